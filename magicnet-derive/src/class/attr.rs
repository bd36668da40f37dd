//! Parsing `name = "..."`, `role = N`, `crate = "..."` and, for objects, `calls(Interface, ...)`.

use syn::meta::ParseNestedMeta;
use syn::{LitInt, LitStr, Path};

use crate::attr::{self, Once};
use crate::ctxt::Ctxt;
use crate::private::CratePath;

/// The options of `#[network_object(...)]` or `#[network_interface(...)]`.
pub(crate) struct ClassAttrs {
    /// `name = "..."`: the network name.
    pub(crate) name: Option<LitStr>,
    /// `role = N`, not yet range-checked.
    pub(crate) role: Option<LitInt>,
    /// `crate = "..."`.
    pub(crate) krate: CratePath,
    /// `calls(Interface, ...)` (objects only), in order.
    pub(crate) calls: Vec<Path>,
}

impl ClassAttrs {
    /// The network name and role, when both are given and valid.
    pub(crate) fn resolved(&self) -> Option<(String, u8)> {
        let name = self.name.as_ref()?.value();
        let role = self.role.as_ref()?.base10_parse::<u8>().ok()?;
        Some((name, role))
    }
}

/// Accumulates the options of one or more attributes (duplicates across them are reported).
pub(crate) struct ClassParser {
    name: Once<LitStr>,
    role: Once<LitInt>,
    krate: Once<Path>,
    calls: Option<Vec<Path>>,
}

impl ClassParser {
    /// A parser for an object (`with_calls`) or an interface.
    pub(crate) fn new(with_calls: bool) -> Self {
        Self {
            name: Once::new("name"),
            role: Once::new("role"),
            krate: Once::new("crate"),
            calls: with_calls.then(Vec::new),
        }
    }

    /// The valid keys, for the error on an unknown one.
    pub(crate) fn expected(&self) -> &'static str {
        if self.calls.is_some() {
            "`name = \"...\"`, `role = N`, `calls(Interface, ...)` or `crate = \"...\"`"
        } else {
            "`name = \"...\"`, `role = N` or `crate = \"...\"`"
        }
    }

    /// Parses one option; `Ok(false)` for an unknown key.
    pub(crate) fn option(&mut self, cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
        if meta.path.is_ident("name") {
            let v = attr::string(cx, meta, "name = \"my-object\"")?;
            self.name.set(cx, &meta.path, v);
        } else if meta.path.is_ident("role") {
            let v = attr::integer(cx, meta, "role = 1")?;
            self.role.set(cx, &meta.path, v);
        } else if meta.path.is_ident("crate") {
            let v = attr::crate_path(cx, meta)?;
            self.krate.set(cx, &meta.path, v);
        } else if let (Some(calls), true) = (&mut self.calls, meta.path.is_ident("calls")) {
            if !meta.input.peek(syn::token::Paren) {
                cx.error(&meta.path, "`calls` lists interfaces: `calls(Interface, ...)`");
                return attr::skip_value(meta).map(|()| true);
            }
            meta.parse_nested_meta(|inner| {
                if !inner.input.is_empty() && !inner.input.peek(syn::Token![,]) {
                    return Err(inner.error("`calls(...)` lists interface traits: `calls(Interface, ...)`"));
                }
                calls.push(inner.path);
                Ok(())
            })?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    pub(crate) fn finish(self) -> ClassAttrs {
        ClassAttrs {
            name: self.name.value(),
            role: self.role.value(),
            krate: CratePath::from_option(self.krate),
            calls: self.calls.unwrap_or_default(),
        }
    }
}
