//! What `#[network_field(...)]` says about a field and `#[net(...)]` about its parameters
//! ([`FieldOptions`], [`ParamAttrs`]), and their parsing.

use proc_macro2::Span;
use syn::{Attribute, Expr, LitBool, LitStr, Token};

use crate::attr::{self, Once};
use crate::ctxt::Ctxt;

/// What `#[network_field(...)]` says about a field.
pub(crate) struct FieldOptions {
    /// `ram_persist = bool` (default true).
    pub(crate) persist: bool,
    /// `auth = "tag"`.
    pub(crate) auth: Option<LitStr>,
    /// `unreliable`.
    pub(crate) unreliable: bool,
}

impl Default for FieldOptions {
    fn default() -> Self {
        Self { persist: true, auth: None, unreliable: false }
    }
}

/// What `#[net(...)]` says about a parameter.
#[derive(Default)]
pub(crate) struct ParamAttrs {
    /// `default` or `default = expr`.
    pub(crate) default: Option<DefaultValue>,
    /// `variadic`, at its key.
    pub(crate) variadic: Option<Span>,
    /// `context`, at its key.
    pub(crate) context: Option<Span>,
}

/// The value of a missing optional argument.
pub(crate) struct DefaultValue {
    /// The `default` key.
    pub(crate) span: Span,
    /// `default = expr`; `None` for `Default::default()`.
    pub(crate) expr: Option<Expr>,
}

/// The options of every `#[net(...)]` among a parameter's attributes.
pub(crate) fn param(cx: &Ctxt, attrs: &[Attribute]) -> ParamAttrs {
    let mut default = Once::new("default");
    let mut variadic = Once::new("variadic");
    let mut context = Once::new("context");
    for a in attrs.iter().filter(|a| attr::is_net(a)) {
        attr::parse_attr(
            cx,
            a,
            "argument option",
            "`default`, `default = expr`, `variadic` or `context`",
            &mut |meta| {
                let span = meta.path.get_ident().map_or_else(Span::call_site, |i| i.span());
                if meta.path.is_ident("default") {
                    let expr = if meta.input.peek(Token![=]) { Some(meta.value()?.parse::<Expr>()?) } else { None };
                    default.set(cx, &meta.path, Some(DefaultValue { span, expr }));
                } else if meta.path.is_ident("variadic") {
                    attr::flag(cx, meta)?;
                    variadic.set(cx, &meta.path, Some(span));
                } else if meta.path.is_ident("context") {
                    attr::flag(cx, meta)?;
                    context.set(cx, &meta.path, Some(span));
                } else {
                    return Ok(false);
                }
                Ok(true)
            },
        );
    }
    ParamAttrs { default: default.value(), variadic: variadic.value(), context: context.value() }
}

/// The options of a field's `#[network_field]` attributes (a second one is reported).
pub(crate) fn options(cx: &Ctxt, attrs: &[&Attribute]) -> FieldOptions {
    let mut persist = Once::<LitBool>::new("ram_persist");
    let mut auth = Once::<LitStr>::new("auth");
    let mut unreliable = Once::<()>::new("unreliable");
    for (i, a) in attrs.iter().enumerate() {
        if i > 0 {
            cx.error(a, "duplicate `#[network_field]`: give it once");
            continue;
        }
        if matches!(a.meta, syn::Meta::Path(_)) {
            continue;
        }
        attr::parse_attr(
            cx,
            a,
            "field option",
            "`ram_persist = bool`, `auth = \"tag\"` or `unreliable`",
            &mut |meta| {
                if meta.path.is_ident("ram_persist") {
                    let v = attr::boolean(cx, meta, "ram_persist = false")?;
                    persist.set(cx, &meta.path, v);
                } else if meta.path.is_ident("auth") {
                    let v = attr::string(cx, meta, "auth = \"admin\"")?;
                    auth.set(cx, &meta.path, v);
                } else if meta.path.is_ident("unreliable") {
                    attr::flag(cx, meta)?;
                    unreliable.set(cx, &meta.path, Some(()));
                } else {
                    return Ok(false);
                }
                Ok(true)
            },
        );
    }
    FieldOptions { persist: persist.value().is_none_or(|b| b.value), auth: auth.value(), unreliable: unreliable.seen() }
}
