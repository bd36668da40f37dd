//! The rules of a `#[network_fields]` block.

use super::ast::Block;
use crate::ctxt::Ctxt;
use crate::field::valid::{check_field, check_sig};

pub(crate) fn check(cx: &Ctxt, block: &Block<'_>) {
    let item = block.item;
    if let Some((_, path, _)) = &item.trait_ {
        cx.error(path, "`#[network_fields]` goes on an inherent impl block (`impl MyObject { ... }`)");
    }
    if !item.generics.params.is_empty() {
        cx.error(&item.generics, "network objects cannot be generic: each class is registered once, by name");
    }
    for (i, f) in block.fields.iter().enumerate() {
        check_field(cx, f);
        if let Some(prev) = block.fields[..i].iter().find(|x| x.name == f.name) {
            cx.error(f.name, format!("duplicate network field `{}`", prev.name));
        }
    }
    if block.fields.len() > 256 {
        cx.error(&item.self_ty, "at most 256 network fields per role (field indexes are one byte)");
    }
    for (i, h) in block.hooks.iter().enumerate() {
        check_sig(cx, &h.sig, "a hook");
        let name = h.kind.attr_name();
        if let Some(extra) = h.sig.args().next() {
            cx.error(
                &extra.original.pat,
                format!("`#[{name}]` takes only `&mut self` and, optionally, the context (`ctx: &mut ObjectContext<'_, Self>`)"),
            );
        }
        if block.hooks[..i].iter().any(|x| x.kind == h.kind) {
            cx.error(h.attr, format!("only one method can be `#[{name}]`"));
        }
    }
}
