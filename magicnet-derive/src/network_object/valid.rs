//! The rules of a network object type.

use super::ast::Object;
use crate::class;
use crate::ctxt::Ctxt;

pub(crate) fn check(cx: &Ctxt, object: &Object<'_>) {
    let input = object.input;
    if object.found {
        class::valid::check(cx, &object.class, &input.ident, "`#[network_object(...)]`");
    } else {
        cx.error(&input.ident, "missing `#[network_object(name = \"...\", role = N)]`");
    }
    if !input.generics.params.is_empty() {
        cx.error(&input.generics, "network objects cannot be generic: each class is registered once, by name");
    }
    if !matches!(input.data, syn::Data::Struct(_)) {
        cx.error(&input.ident, "network objects must be structs");
    }
}
