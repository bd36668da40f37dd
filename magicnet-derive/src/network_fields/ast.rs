//! The model of a `#[network_fields]` block, parsed from the impl block and its attributes.
//! Attribute mistakes (unknown or duplicate options, misplaced markers) are reported here.

use proc_macro2::TokenStream;
use syn::{Attribute, FnArg, Ident, ImplItem, ItemImpl};

use crate::attr::{self, Once};
use crate::ctxt::Ctxt;
use crate::field::{self, Field, Sig, Site};
use crate::private::{CratePath, Private};

/// A `#[network_fields]` block.
pub(crate) struct Block<'a> {
    pub(crate) item: &'a ItemImpl,
    /// `#[network_fields(crate = "...")]`.
    pub(crate) krate: CratePath,
    /// The `#[network_field]` methods, in order.
    pub(crate) fields: Vec<Field<'a>>,
    /// The `#[net_create]` and `#[net_delete]` methods, in order.
    pub(crate) hooks: Vec<Hook<'a>>,
}

/// The two hooks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookKind {
    Create,
    Delete,
}

impl HookKind {
    const ALL: [HookKind; 2] = [HookKind::Create, HookKind::Delete];

    /// The marker attribute's name.
    pub(crate) fn attr_name(self) -> &'static str {
        match self {
            HookKind::Create => "net_create",
            HookKind::Delete => "net_delete",
        }
    }

    /// The `NetworkFields` method that calls it.
    pub(crate) fn trait_method(self) -> &'static str {
        match self {
            HookKind::Create => "__net_create",
            HookKind::Delete => "__net_delete",
        }
    }

    fn of(attr: &Attribute) -> Option<Self> {
        Self::ALL.into_iter().find(|k| attr.path().is_ident(k.attr_name()))
    }
}

/// A `#[net_create]` or `#[net_delete]` method.
pub(crate) struct Hook<'a> {
    pub(crate) kind: HookKind,
    pub(crate) attr: &'a Attribute,
    pub(crate) ident: &'a Ident,
    pub(crate) sig: Sig<'a>,
}

/// An attribute this macro consumes from the block's items.
pub(crate) fn is_marker(attr: &Attribute) -> bool {
    attr.path().is_ident("network_field") || HookKind::of(attr).is_some()
}

fn item_attrs(item: &ImplItem) -> &[Attribute] {
    match item {
        ImplItem::Const(c) => &c.attrs,
        ImplItem::Fn(f) => &f.attrs,
        ImplItem::Type(t) => &t.attrs,
        ImplItem::Macro(m) => &m.attrs,
        _ => &[],
    }
}

impl<'a> Block<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, args: TokenStream, item: &'a ItemImpl) -> Self {
        let mut krate = Once::new("crate");
        attr::parse_args(cx, args, "`#[network_fields]` option", "`crate = \"...\"`", &mut |meta| {
            if !meta.path.is_ident("crate") {
                return Ok(false);
            }
            let v = attr::crate_path(cx, meta)?;
            krate.set(cx, &meta.path, v);
            Ok(true)
        });
        let mut fields = Vec::new();
        let mut hooks = Vec::new();
        for it in &item.items {
            let ImplItem::Fn(f) = it else {
                for a in item_attrs(it).iter().filter(|a| is_marker(a)) {
                    cx.error(a, "network fields and hooks are methods: put this attribute on a `fn`");
                }
                continue;
            };
            let field_attrs: Vec<&Attribute> = f.attrs.iter().filter(|a| a.path().is_ident("network_field")).collect();
            let hook_attrs: Vec<(HookKind, &Attribute)> =
                f.attrs.iter().filter_map(|a| HookKind::of(a).map(|k| (k, a))).collect();
            if field_attrs.is_empty() && hook_attrs.is_empty() {
                for input in &f.sig.inputs {
                    let FnArg::Typed(pt) = input else { continue };
                    for a in pt.attrs.iter().filter(|a| attr::is_net(a)) {
                        cx.error(a, "`#[net(...)]` goes on the arguments of `#[network_field]` methods");
                    }
                }
                continue;
            }
            for (kind, a) in &hook_attrs {
                if !matches!(a.meta, syn::Meta::Path(_)) {
                    cx.error(a, format!("`#[{}]` takes no options", kind.attr_name()));
                }
            }
            if !field_attrs.is_empty() {
                for (_, a) in &hook_attrs {
                    cx.error(a, "a method is either a network field or a hook, not both");
                }
                let options = field::attr::options(cx, &field_attrs);
                let sig = Sig::from_syn(cx, &f.sig, Site::Impl);
                fields.push(Field { name: &f.sig.ident, vis: Some(&f.vis), options, sig });
            } else {
                let (kind, attr) = hook_attrs[0];
                for (_, a) in &hook_attrs[1..] {
                    cx.error(a, "a method is at most one hook: `#[net_create]` or `#[net_delete]`");
                }
                hooks.push(Hook { kind, attr, ident: &f.sig.ident, sig: Sig::from_syn(cx, &f.sig, Site::Impl) });
            }
        }
        Block { item, krate: CratePath::from_option(krate), fields, hooks }
    }

    /// The path of generated code (valid once the block is checked).
    pub(crate) fn private(&self) -> Private {
        self.krate.private().expect("an invalid crate path is reported")
    }

    /// The method of a hook, if any.
    pub(crate) fn hook(&self, kind: HookKind) -> Option<&Hook<'a>> {
        self.hooks.iter().find(|h| h.kind == kind)
    }
}
