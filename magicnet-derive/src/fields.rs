//! The model of a network field (a method called across the network) and the code every
//! field needs: its descriptor, its argument decoder, and its typed send method.
//! Shared by `#[network_fields]` (implementations) and `#[network_interface]` (declarations).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, LitBool, LitStr, Pat, Signature, Type, Visibility};

use crate::ctxt::Ctxt;

pub(crate) enum Default_ {
    None,
    Trait,
    Expr(Box<syn::Expr>),
}

pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) default: Default_,
    /// The element type of a variadic (`Vec<T>`) argument.
    pub(crate) variadic: Option<Type>,
}

pub(crate) struct Field {
    pub(crate) name: Ident,
    pub(crate) vis: Visibility,
    pub(crate) args: Vec<Arg>,
    pub(crate) persist: bool,
    pub(crate) auth: Option<LitStr>,
    pub(crate) unreliable: bool,
    /// The method takes the context as its first argument.
    pub(crate) has_ctx: bool,
    pub(crate) span: Span,
}

/// What `#[network_field(...)]` says about a field.
pub(crate) struct FieldOptions {
    pub(crate) persist: bool,
    pub(crate) auth: Option<LitStr>,
    pub(crate) unreliable: bool,
}

impl Default for FieldOptions {
    fn default() -> Self {
        Self { persist: true, auth: None, unreliable: false }
    }
}

/// Options of `#[network_field(...)]`.
pub(crate) fn parse_field_options(cx: &Ctxt, attr: &Attribute, opts: &mut FieldOptions) {
    if matches!(attr.meta, syn::Meta::Path(_)) {
        return;
    }
    let mut seen_persist = false;
    let FieldOptions { persist, auth, unreliable } = opts;
    let r = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("ram_persist") {
            if seen_persist {
                return Err(meta.error("duplicate `ram_persist`"));
            }
            seen_persist = true;
            let v: LitBool = meta.value()?.parse()?;
            *persist = v.value;
            Ok(())
        } else if meta.path.is_ident("auth") {
            if auth.is_some() {
                return Err(meta.error("duplicate `auth`"));
            }
            let v: LitStr = meta.value()?.parse()?;
            if v.value().is_empty() {
                return Err(syn::Error::new(v.span(), "`auth` needs a non-empty permission tag"));
            }
            *auth = Some(v);
            Ok(())
        } else if meta.path.is_ident("unreliable") {
            if *unreliable {
                return Err(meta.error("duplicate `unreliable`"));
            }
            *unreliable = true;
            Ok(())
        } else {
            Err(meta.error("unknown field option; expected `ram_persist = bool`, `auth = \"tag\"` or `unreliable`"))
        }
    });
    if let Err(e) = r {
        cx.push(e);
    }
}

fn is_context(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    let Type::Path(p) = &*r.elem else { return false };
    p.path.segments.last().is_some_and(|s| s.ident == "ObjectContext")
}

fn vec_elem(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Vec" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(a) = &last.arguments else { return None };
    match a.args.first()? {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

/// Reads the arguments of a field method (or interface declaration), removing the
/// `#[net(...)]` attributes from them. `method` requires a `self` receiver; declarations
/// (interfaces) must not have one.
pub(crate) fn parse_signature(cx: &Ctxt, sig: &mut Signature, method: bool) -> (Vec<Arg>, bool) {
    let mut args = Vec::new();
    let mut has_ctx = false;
    let mut saw_receiver = false;
    let n_inputs = sig.inputs.len();
    for (i, input) in sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                saw_receiver = true;
                if !method {
                    cx.error(&*r, "interface fields are declarations: leave out `self`");
                }
            }
            FnArg::Typed(pt) => {
                if method && args.is_empty() && !has_ctx && is_context(&pt.ty) {
                    has_ctx = true;
                    continue;
                }
                let mut default = Default_::None;
                let mut variadic = false;
                let mut keep = Vec::new();
                for attr in pt.attrs.drain(..) {
                    if !attr.path().is_ident("net") {
                        keep.push(attr);
                        continue;
                    }
                    let r = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("default") {
                            if !matches!(default, Default_::None) {
                                return Err(meta.error("duplicate `default`"));
                            }
                            default = if meta.input.peek(syn::Token![=]) {
                                Default_::Expr(Box::new(meta.value()?.parse()?))
                            } else {
                                Default_::Trait
                            };
                            Ok(())
                        } else if meta.path.is_ident("variadic") {
                            variadic = true;
                            Ok(())
                        } else {
                            Err(meta
                                .error("unknown argument option; expected `default`, `default = expr` or `variadic`"))
                        }
                    });
                    if let Err(e) = r {
                        cx.push(e);
                    }
                }
                pt.attrs = keep;
                let ident = match &*pt.pat {
                    Pat::Ident(p) => p.ident.clone(),
                    other => {
                        cx.error(other, "network field arguments must be plain names (`value: i32`)");
                        format_ident!("__arg{}", i)
                    }
                };
                let variadic = if variadic {
                    if i + 1 != n_inputs {
                        cx.error(&*pt, "only the last argument can be `#[net(variadic)]`");
                    }
                    if !matches!(default, Default_::None) {
                        cx.error(&*pt, "a variadic argument cannot have a default (it may be empty)");
                    }
                    match vec_elem(&pt.ty) {
                        Some(t) => Some(t),
                        None => {
                            cx.error(&pt.ty, "a variadic argument must be a `Vec<T>`");
                            None
                        }
                    }
                } else {
                    None
                };
                args.push(Arg { ident, ty: (*pt.ty).clone(), default, variadic });
            }
        }
    }
    if method && !saw_receiver {
        cx.error(&sig.ident, "a network field is a method: it takes `&mut self` (or `&self`)");
    }
    let mut seen_default = false;
    for a in &args {
        match (&a.default, &a.variadic) {
            (Default_::None, None) if seen_default => {
                cx.error(
                    &a.ident,
                    "arguments after one with a default need a default too: only trailing arguments may be left out",
                );
            }
            (Default_::Expr(_) | Default_::Trait, _) => seen_default = true,
            _ => {}
        }
    }
    if !sig.generics.params.is_empty() {
        cx.error(&sig.generics, "network fields cannot be generic: their argument types are part of the protocol");
    }
    if sig.asyncness.is_some() {
        cx.error(sig.asyncness, "network fields run inside the node and cannot be async");
    }
    (args, has_ctx)
}

impl Field {
    fn min(&self) -> u16 {
        self.args.iter().take_while(|a| matches!(a.default, Default_::None) && a.variadic.is_none()).count() as u16
    }

    fn fixed(&self) -> usize {
        self.args.iter().filter(|a| a.variadic.is_none()).count()
    }

    fn max(&self) -> u16 {
        if self.args.last().is_some_and(|a| a.variadic.is_some()) { u16::MAX } else { self.args.len() as u16 }
    }

    /// `FieldDesc { ... }` for the field table.
    pub(crate) fn desc(&self) -> TokenStream {
        let p = quote!(::magicnet::__private);
        let name = self.name.to_string();
        let persist = self.persist;
        let unreliable = self.unreliable;
        let auth = match &self.auth {
            Some(a) => quote!(::core::option::Option::Some(#a)),
            None => quote!(::core::option::Option::None),
        };
        let args = self.args.iter().map(|a| {
            let n = a.ident.to_string();
            let ty = &a.ty;
            let optional = !matches!(a.default, Default_::None);
            let variadic = a.variadic.is_some();
            let schema = match &a.variadic {
                Some(elem) => quote_spanned!(elem.span()=> <#elem as #p::NetType>::schema),
                None => quote_spanned!(ty.span()=> <#ty as #p::NetType>::schema),
            };
            quote!(#p::ArgDesc { name: #n, schema: #schema, optional: #optional, variadic: #variadic })
        });
        quote!(#p::FieldDesc { name: #name, args: &[#(#args),*], persist: #persist, auth: #auth, unreliable: #unreliable })
    }

    /// A function decoding this field's argument array into a tuple of its arguments.
    pub(crate) fn decoder(&self, fn_name: &Ident) -> TokenStream {
        let p = quote!(::magicnet::__private);
        let min = self.min();
        let max = self.max();
        let fixed = self.fixed();
        let tys = self.args.iter().map(|a| &a.ty);
        let mut stmts = Vec::new();
        let mut vars = Vec::new();
        for (i, a) in self.args.iter().enumerate() {
            let v = format_ident!("__a{}", i);
            let n = a.ident.to_string();
            let ty = &a.ty;
            let decode = quote_spanned!(ty.span()=> <#ty as #p::NetType>::decode(__r).map_err(#p::CallError::arg(#n))?);
            let stmt = match (&a.default, &a.variadic) {
                (_, Some(elem)) => quote_spanned! {elem.span()=>
                    // fewer than `fixed` arguments is possible when earlier ones have defaults
                    let mut #v: #ty = ::std::vec::Vec::with_capacity(__n.saturating_sub(#fixed).min(1024));
                    for _ in #fixed..__n {
                        #v.push(<#elem as #p::NetType>::decode(__r).map_err(#p::CallError::arg(#n))?);
                    }
                },
                (Default_::None, None) => quote!(let #v: #ty = #decode;),
                (Default_::Trait, None) => {
                    quote!(let #v: #ty = if __n > #i { #decode } else { ::core::default::Default::default() };)
                }
                (Default_::Expr(e), None) => quote!(let #v: #ty = if __n > #i { #decode } else { #e };),
            };
            stmts.push(stmt);
            vars.push(v);
        }
        quote! {
            #[doc(hidden)]
            #[allow(clippy::all, unused_comparisons)]
            fn #fn_name(__r: &mut #p::Reader<'_>) -> ::core::result::Result<(#(#tys,)*), #p::CallError> {
                let __n = __r.read_array_len().map_err(#p::CallError::arg("arguments"))?;
                if __n < #min as usize || __n > #max as usize {
                    return ::core::result::Result::Err(#p::CallError::BadArgs {
                        arg: "arguments",
                        error: #p::DecodeError::ArgumentCount { min: #min, max: #max, found: __n },
                    });
                }
                __r.enter().map_err(#p::CallError::arg("arguments"))?;
                #(#stmts)*
                __r.leave();
                __r.finish().map_err(#p::CallError::arg("arguments"))?;
                ::core::result::Result::Ok((#(#vars,)*))
            }
        }
    }

    /// The typed send method `send_<name>(&self, to, args...)`.
    pub(crate) fn sender(
        &self,
        role: &TokenStream,
        index: u8,
        vis: &Visibility,
        where_clause: TokenStream,
        prefix: TokenStream,
    ) -> TokenStream {
        let p = quote!(::magicnet::__private);
        let fn_name = format_ident!("send_{}", self.name, span = self.name.span());
        let params = self.args.iter().map(|a| {
            let (i, t) = (&a.ident, &a.ty);
            quote!(#i: #t)
        });
        let fixed = self.fixed();
        let len = match self.args.iter().find(|a| a.variadic.is_some()) {
            Some(v) => {
                let i = &v.ident;
                quote!(#fixed + #i.len())
            }
            None => quote!(#fixed),
        };
        let encodes = self.args.iter().map(|a| {
            let i = &a.ident;
            match &a.variadic {
                Some(elem) => {
                    quote_spanned!(elem.span()=> for __x in &#i { <#elem as #p::NetType>::encode(__x, &mut __w)?; })
                }
                None => {
                    let ty = &a.ty;
                    quote_spanned!(ty.span()=> <#ty as #p::NetType>::encode(&#i, &mut __w)?;)
                }
            }
        });
        let doc = format!(
            "Calls the network field `{}` on the other views of this object (generated by MagicNet).",
            self.name
        );
        let span = self.span;
        quote_spanned! {span=>
            #[doc = #doc]
            #[allow(clippy::too_many_arguments, dead_code)]
            #vis fn #fn_name(
                &self,
                to: &mut impl ::magicnet::object::FieldTarget<Self>,
                #(#params),*
            ) -> ::core::result::Result<(), ::magicnet::SendError> #where_clause {
                #prefix
                let mut __w = ::std::vec::Vec::with_capacity(16);
                #p::write_array_len(&mut __w, #len);
                #(#encodes)*
                #p::call_field(to, #role, #index, __w)
            }
        }
    }
}
