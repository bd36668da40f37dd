//! Shared attribute parsing: the options of `#[name(key, key = value, ...)]`.
//!
//! Every option may be given once; unknown keys are reported and skipped, and a value of the
//! wrong kind is reported and ignored, so that one pass reports every mistake of an attribute.
//! Only malformed syntax (`key = ,`) ends an attribute early.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Attribute, Expr, ExprLit, Lit, LitBool, LitInt, LitStr, Path, Token};

use crate::ctxt::Ctxt;

/// `#[net(...)]`: MagicNet's attribute on parameters, wire struct fields and wire structs.
pub(crate) fn is_net(attr: &Attribute) -> bool {
    attr.path().is_ident("net")
}

/// An option that may be given at most once. A value of the wrong kind still counts as given
/// (so a second one is a duplicate) but has no value.
pub(crate) struct Once<T> {
    key: &'static str,
    seen: bool,
    value: Option<T>,
}

impl<T> Once<T> {
    pub(crate) fn new(key: &'static str) -> Self {
        Self { key, seen: false, value: None }
    }

    /// Records the option found at `at`; a second occurrence is reported there.
    pub(crate) fn set(&mut self, cx: &Ctxt, at: &Path, value: Option<T>) {
        if self.seen {
            cx.error(at, format!("duplicate `{}`: give it once", self.key));
            return;
        }
        self.seen = true;
        self.value = value;
    }

    /// The option was given (valid or not).
    pub(crate) fn seen(&self) -> bool {
        self.seen
    }

    /// Its value, if given and valid.
    pub(crate) fn value(self) -> Option<T> {
        self.value
    }
}

/// What the parser of an attribute does with one option: `Ok(true)` if it knew the key.
pub(crate) type OptionFn<'f> = dyn FnMut(&ParseNestedMeta<'_>) -> syn::Result<bool> + 'f;

fn each<'c>(
    cx: &'c Ctxt,
    what: &'c str,
    expected: &'c str,
    f: &'c mut OptionFn<'_>,
) -> impl FnMut(ParseNestedMeta<'_>) -> syn::Result<()> + 'c {
    move |meta| {
        if f(&meta)? {
            return Ok(());
        }
        let key = meta.path.to_token_stream().to_string().replace(' ', "");
        cx.error(&meta.path, format!("unknown {what} `{key}`; expected {expected}"));
        skip_value(&meta)
    }
}

/// Parses the options of `attr` (`#[path(...)]`). `what` names them in the error for an
/// unknown key (e.g. "message option") and `expected` lists the valid ones.
pub(crate) fn parse_attr(cx: &Ctxt, attr: &Attribute, what: &str, expected: &str, f: &mut OptionFn<'_>) {
    if let Err(e) = attr.parse_nested_meta(each(cx, what, expected, f)) {
        cx.push(e);
    }
}

/// Parses the options of an attribute macro (`#[network_fields(...)]`), given as its tokens.
pub(crate) fn parse_args(cx: &Ctxt, args: TokenStream, what: &str, expected: &str, f: &mut OptionFn<'_>) {
    if let Err(e) = syn::meta::parser(each(cx, what, expected, f)).parse2(args) {
        cx.push(e);
    }
}

/// Skips the value of an option (`= ...` or `(...)`), up to the next comma.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    meta.input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

fn key(meta: &ParseNestedMeta<'_>) -> String {
    meta.path.to_token_stream().to_string()
}

/// A bare option (`unreliable`): a value given to it is reported and skipped.
pub(crate) fn flag(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        let key = key(meta);
        cx.error(&meta.path, format!("`{key}` takes no value: write just `{key}`"));
        skip_value(meta)?;
    }
    Ok(())
}

/// The value of `key = value`, as an expression; a missing value is reported (`None`).
pub(crate) fn expr(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<Expr>> {
    if !meta.input.peek(Token![=]) {
        cx.error(&meta.path, format!("`{}` needs a value: `{example}`", key(meta)));
        skip_value(meta)?;
        return Ok(None);
    }
    Ok(Some(meta.value()?.parse()?))
}

fn lit(cx: &Ctxt, meta: &ParseNestedMeta<'_>, kind: &str, example: &str) -> syn::Result<Option<Lit>> {
    Ok(match expr(cx, meta, example)? {
        None => None,
        Some(Expr::Lit(ExprLit { lit, .. })) => Some(lit),
        Some(other) => {
            cx.error(&other, format!("`{}` takes {kind}: `{example}`", key(meta)));
            None
        }
    })
}

/// `key = "string"`.
pub(crate) fn string(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<LitStr>> {
    Ok(match lit(cx, meta, "a string", example)? {
        Some(Lit::Str(s)) => Some(s),
        Some(other) => {
            cx.error(&other, format!("`{}` takes a string: `{example}`", key(meta)));
            None
        }
        None => None,
    })
}

/// `key = true` or `key = false`.
pub(crate) fn boolean(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<LitBool>> {
    Ok(match lit(cx, meta, "`true` or `false`", example)? {
        Some(Lit::Bool(b)) => Some(b),
        Some(other) => {
            cx.error(&other, format!("`{}` takes `true` or `false`: `{example}`", key(meta)));
            None
        }
        None => None,
    })
}

/// `key = 123`.
pub(crate) fn integer(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<LitInt>> {
    Ok(match lit(cx, meta, "an integer", example)? {
        Some(Lit::Int(i)) => Some(i),
        Some(other) => {
            cx.error(&other, format!("`{}` takes an integer: `{example}`", key(meta)));
            None
        }
        None => None,
    })
}

/// `crate = "path"`: where the `magicnet` crate is, for a renamed dependency or a facade
/// crate that re-exports it (like serde's `#[serde(crate = "...")]`).
pub(crate) fn crate_path(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Path>> {
    const EXAMPLE: &str = "crate = \"::magicnet\"";
    let Some(lit) = string(cx, meta, EXAMPLE)? else { return Ok(None) };
    match lit.parse_with(Path::parse_mod_style) {
        Ok(path) => Ok(Some(path)),
        Err(_) => {
            cx.error(
                &lit,
                "`crate` must be the path of the magicnet crate, \
                 such as `crate = \"::magicnet\"` or `crate = \"my_facade::magicnet\"`",
            );
            Ok(None)
        }
    }
}
