//! The user's impl block as it is emitted: without the attributes this macro consumes
//! (`#[network_field]`, the hook markers, `#[net(...)]` on parameters), which the compiler
//! would not know.

use syn::{FnArg, ImplItem, ItemImpl};

use super::ast::is_marker;
use crate::attr::is_net;

pub(crate) fn strip(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    for it in &mut item.items {
        match it {
            ImplItem::Fn(f) => {
                f.attrs.retain(|a| !is_marker(a));
                for input in &mut f.sig.inputs {
                    if let FnArg::Typed(pt) = input {
                        pt.attrs.retain(|a| !is_net(a));
                    }
                }
            }
            ImplItem::Const(c) => c.attrs.retain(|a| !is_marker(a)),
            ImplItem::Type(t) => t.attrs.retain(|a| !is_marker(a)),
            ImplItem::Macro(m) => m.attrs.retain(|a| !is_marker(a)),
            _ => {}
        }
    }
    item
}
