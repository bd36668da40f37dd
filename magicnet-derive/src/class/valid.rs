//! The rules of a class's identity.

use quote::ToTokens;

use super::ClassAttrs;
use crate::ctxt::Ctxt;

/// Checks the name and role; missing options are reported at `at`, naming `what` (the
/// attribute to add them to).
pub(crate) fn check(cx: &Ctxt, attrs: &ClassAttrs, at: impl ToTokens, what: &str) {
    match &attrs.name {
        None => cx.error(&at, format!("missing network name: add `name = \"...\"` to {what}")),
        Some(name) if name.value().is_empty() => cx.error(name, "the network name cannot be empty"),
        Some(_) => {}
    }
    match &attrs.role {
        None => cx.error(&at, format!("missing role: add `role = N` to {what} (e.g. client 0, server 1)")),
        Some(role) if role.base10_parse::<u8>().is_err() => cx.error(role, "the role must be an integer from 0 to 255"),
        Some(_) => {}
    }
    for (i, path) in attrs.calls.iter().enumerate() {
        if attrs.calls[..i].contains(path) {
            cx.error(path, "this interface is already listed in `calls(...)`");
        }
    }
}
