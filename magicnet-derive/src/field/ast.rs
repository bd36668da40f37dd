//! The model of a network field and of its parameters, built from the method's signature.

use syn::{FnArg, Ident, Pat, PatType, Receiver, Signature, Type, Visibility};

use super::attr::{self, FieldOptions, ParamAttrs};
use crate::ctxt::Ctxt;

/// Where a signature comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    /// A method of a `#[network_fields]` block (a field or a hook): it takes `self` and may
    /// take the context.
    Impl,
    /// A declaration in a `#[network_interface]` trait: only the wire arguments.
    Interface,
}

/// A network field.
pub(crate) struct Field<'a> {
    /// The method's name, which is the field's name on the wire.
    pub(crate) name: &'a Ident,
    /// The visibility of the method (its send method gets the same); `None` in an interface.
    pub(crate) vis: Option<&'a Visibility>,
    pub(crate) options: FieldOptions,
    pub(crate) sig: Sig<'a>,
}

/// A method's signature: its receiver and its typed parameters, in order.
pub(crate) struct Sig<'a> {
    pub(crate) original: &'a Signature,
    pub(crate) site: Site,
    pub(crate) receiver: Option<&'a Receiver>,
    pub(crate) params: Vec<Param<'a>>,
}

/// A typed parameter: the context, or a wire argument.
pub(crate) struct Param<'a> {
    pub(crate) original: &'a PatType,
    /// The parameter's name, when its pattern is a plain name.
    pub(crate) ident: Option<&'a Ident>,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: ParamAttrs,
    /// This is the context: marked `#[net(context)]`, or (in an impl) the first parameter
    /// after `self` when it is a reference (`&mut`, or `&`). Wire arguments are owned values,
    /// so a reference can only be the context; its type's name does not matter (an alias of
    /// `ObjectContext` works).
    pub(crate) context: bool,
}

impl<'a> Sig<'a> {
    /// Reads a signature, parsing the `#[net(...)]` attributes of its parameters.
    pub(crate) fn from_syn(cx: &Ctxt, sig: &'a Signature, site: Site) -> Self {
        let mut receiver = None;
        let mut params = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Some(r),
                FnArg::Typed(pt) => {
                    let attrs = attr::param(cx, &pt.attrs);
                    let first = params.is_empty();
                    let is_ref = matches!(*pt.ty, Type::Reference(_));
                    let context = attrs.context.is_some() || (site == Site::Impl && first && is_ref);
                    let ident = match &*pt.pat {
                        Pat::Ident(p) => Some(&p.ident),
                        _ => None,
                    };
                    params.push(Param { original: pt, ident, ty: &pt.ty, attrs, context });
                }
            }
        }
        Sig { original: sig, site, receiver, params }
    }

    /// The wire arguments, in order.
    pub(crate) fn args(&self) -> impl Iterator<Item = &Param<'a>> {
        self.params.iter().filter(|p| !p.context)
    }
}

impl Param<'_> {
    /// Callers may leave it out.
    pub(crate) fn is_optional(&self) -> bool {
        self.attrs.default.is_some()
    }

    /// The element type of a variadic argument (`T` of `#[net(variadic)] rest: Vec<T>`).
    pub(crate) fn variadic(&self) -> Option<&Type> {
        self.attrs.variadic?;
        vec_elem(self.ty)
    }

    /// The name the field table and error messages use.
    pub(crate) fn name(&self) -> String {
        self.ident.map_or_else(|| "argument".to_owned(), Ident::to_string)
    }
}

impl Field<'_> {
    /// Fewest arguments a caller may send.
    pub(crate) fn min(&self) -> u16 {
        self.sig.args().take_while(|a| !a.is_optional() && a.attrs.variadic.is_none()).count() as u16
    }

    /// Most arguments a caller may send (`u16::MAX` with a variadic argument).
    pub(crate) fn max(&self) -> u16 {
        if self.sig.args().last().is_some_and(|a| a.attrs.variadic.is_some()) {
            u16::MAX
        } else {
            self.sig.args().count() as u16
        }
    }

    /// The number of arguments before the variadic one (all of them without one).
    pub(crate) fn fixed(&self) -> usize {
        self.sig.args().filter(|a| a.attrs.variadic.is_none()).count()
    }
}

/// `T` of `Vec<T>` (by the last segment: `std::vec::Vec<T>` too).
fn vec_elem(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Vec" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(a) = &last.arguments else { return None };
    match a.args.first()? {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}
