//! The model of a `#[network_interface]` trait, parsed from the trait and the attribute's
//! options.

use proc_macro2::TokenStream;
use syn::{Attribute, ItemTrait, TraitItem, TraitItemFn};

use crate::attr;
use crate::class::{ClassAttrs, ClassParser};
use crate::ctxt::Ctxt;
use crate::field::{self, Field, Sig, Site};
use crate::private::Private;

/// A `#[network_interface]` trait.
pub(crate) struct Interface<'a> {
    pub(crate) item: &'a ItemTrait,
    pub(crate) class: ClassAttrs,
    /// The field declarations, in order.
    pub(crate) decls: Vec<Decl<'a>>,
    /// Trait items that are not field declarations (an error).
    pub(crate) others: Vec<&'a TraitItem>,
}

/// A field declaration: `fn name(arg: Type, ...);`.
pub(crate) struct Decl<'a> {
    pub(crate) item: &'a TraitItemFn,
    pub(crate) field: Field<'a>,
}

impl<'a> Interface<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, args: TokenStream, item: &'a ItemTrait) -> Self {
        let mut parser = ClassParser::new(false);
        let expected = parser.expected();
        attr::parse_args(cx, args, "`#[network_interface]` option", expected, &mut |meta| parser.option(cx, meta));
        let mut decls = Vec::new();
        let mut others = Vec::new();
        for it in &item.items {
            let TraitItem::Fn(f) = it else {
                others.push(it);
                continue;
            };
            let mut field_attrs: Vec<&Attribute> = Vec::new();
            for a in &f.attrs {
                if a.path().is_ident("network_field") {
                    field_attrs.push(a);
                } else if !a.path().is_ident("doc") {
                    cx.error(a, "only `#[network_field(...)]` and doc comments are allowed on interface fields");
                }
            }
            let options = field::attr::options(cx, &field_attrs);
            let sig = Sig::from_syn(cx, &f.sig, Site::Interface);
            decls.push(Decl { item: f, field: Field { name: &f.sig.ident, vis: None, options, sig } });
        }
        Interface { item, class: parser.finish(), decls, others }
    }

    /// The path of generated code (valid once the interface is checked).
    pub(crate) fn private(&self) -> Private {
        self.class.krate.private().expect("an invalid crate path is reported")
    }

    /// The fields, in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.decls.iter().map(|d| &d.field)
    }
}
