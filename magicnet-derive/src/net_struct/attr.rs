//! Which derive runs ([`Kind`]), and parsing the attributes it takes: `#[net(...)]` (on the
//! struct: `crate`; on fields: `default`) and `#[message(...)]` (`id`, `name`, `unreliable`,
//! `crate`).

use syn::{DeriveInput, LitInt, LitStr, Path};

use crate::attr::{self, Once, is_net};
use crate::ctxt::Ctxt;
use crate::private::CratePath;

/// Which derive: it decides which attributes the struct takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `#[derive(NetStruct)]`: `NetType`.
    NetStruct,
    /// `#[derive(Message)]`: `NetType` and `Message`.
    Message,
}

/// The struct's options.
pub(crate) struct ContainerAttrs {
    pub(crate) krate: CratePath,
    /// `#[message(...)]` (a `Message` derive only).
    pub(crate) message: Option<MessageAttrs>,
}

/// `#[message(...)]`.
pub(crate) struct MessageAttrs {
    /// `id = N`, not yet range-checked.
    pub(crate) id: Option<LitInt>,
    /// `name = "..."` (default: the type's name).
    pub(crate) name: Option<LitStr>,
    /// `unreliable`.
    pub(crate) unreliable: bool,
}

pub(crate) fn container(cx: &Ctxt, input: &DeriveInput, kind: Kind) -> ContainerAttrs {
    let mut krate = Once::<Path>::new("crate");
    let mut parse_crate = |meta: &syn::meta::ParseNestedMeta<'_>| {
        if !meta.path.is_ident("crate") {
            return Ok(false);
        }
        let v = attr::crate_path(cx, meta)?;
        krate.set(cx, &meta.path, v);
        Ok(true)
    };
    let message = match kind {
        Kind::NetStruct => {
            for a in input.attrs.iter().filter(|a| is_net(a)) {
                let expected = "`crate = \"...\"` (fields take `#[net(default)]`)";
                attr::parse_attr(cx, a, "struct option", expected, &mut parse_crate);
            }
            None
        }
        Kind::Message => {
            for a in input.attrs.iter().filter(|a| is_net(a)) {
                cx.error(
                    a,
                    "a message takes its options in `#[message(...)]`, e.g. `#[message(id = 65, crate = \"...\")]`",
                );
            }
            let mut id = Once::<LitInt>::new("id");
            let mut name = Once::<LitStr>::new("name");
            let mut unreliable = Once::<()>::new("unreliable");
            for a in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
                let expected = "`id = N`, `name = \"...\"`, `unreliable` or `crate = \"...\"`";
                attr::parse_attr(cx, a, "message option", expected, &mut |meta| {
                    if meta.path.is_ident("id") {
                        let v = attr::integer(cx, meta, "id = 65")?;
                        id.set(cx, &meta.path, v);
                    } else if meta.path.is_ident("name") {
                        let v = attr::string(cx, meta, "name = \"Chat\"")?;
                        name.set(cx, &meta.path, v);
                    } else if meta.path.is_ident("unreliable") {
                        attr::flag(cx, meta)?;
                        unreliable.set(cx, &meta.path, Some(()));
                    } else {
                        return parse_crate(meta);
                    }
                    Ok(true)
                });
            }
            Some(MessageAttrs { id: id.value(), name: name.value(), unreliable: unreliable.seen() })
        }
    };
    ContainerAttrs { krate: CratePath::from_option(krate), message }
}

/// A field's `#[net(default)]`.
pub(crate) fn field(cx: &Ctxt, field: &syn::Field) -> bool {
    let mut default = Once::<()>::new("default");
    for a in field.attrs.iter().filter(|a| is_net(a)) {
        attr::parse_attr(cx, a, "field option", "`default`", &mut |meta| {
            if !meta.path.is_ident("default") {
                return Ok(false);
            }
            attr::flag(cx, meta)?;
            default.set(cx, &meta.path, Some(()));
            Ok(true)
        });
    }
    default.seen()
}
