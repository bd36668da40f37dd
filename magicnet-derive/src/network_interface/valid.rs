//! The rules of a `#[network_interface]` trait.

use super::ast::Interface;
use crate::class;
use crate::ctxt::Ctxt;
use crate::field::valid::check_field;

pub(crate) fn check(cx: &Ctxt, interface: &Interface<'_>) {
    let item = interface.item;
    class::valid::check(cx, &interface.class, &item.ident, "`#[network_interface(...)]`");
    if !item.generics.params.is_empty() {
        cx.error(&item.generics, "network interfaces cannot be generic");
    }
    if !item.supertraits.is_empty() {
        cx.error(&item.supertraits, "network interfaces have no supertraits");
    }
    for other in &interface.others {
        cx.error(other, "a network interface only declares fields: `fn name(arg: Type, ...);`");
    }
    for (i, d) in interface.decls.iter().enumerate() {
        let sig = &d.item.sig;
        if d.item.default.is_some() {
            cx.error(&sig.ident, "interface fields are declarations: end them with `;`, no body");
        }
        if !matches!(sig.output, syn::ReturnType::Default) {
            cx.error(&sig.output, "network fields return nothing across the network");
        }
        check_field(cx, &d.field);
        if let Some(prev) = interface.decls[..i].iter().find(|x| x.field.name == d.field.name) {
            cx.error(d.field.name, format!("duplicate network field `{}`", prev.field.name));
        }
    }
    if interface.decls.len() > 256 {
        cx.error(&item.ident, "at most 256 network fields per role (field indexes are one byte)");
    }
}
