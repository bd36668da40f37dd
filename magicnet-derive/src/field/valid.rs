//! The rules of a network field's signature and options.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Type;

use super::ast::{Field, Param, Sig, Site};
use crate::ctxt::Ctxt;

/// A parameter without its attributes (`name: Type`), where most diagnostics about it go.
fn tokens(p: &Param<'_>) -> TokenStream {
    let mut ts = p.original.pat.to_token_stream();
    p.original.colon_token.to_tokens(&mut ts);
    p.ty.to_tokens(&mut ts);
    ts
}

/// Checks a method or declaration: its receiver, generics, context and argument kinds. `what`
/// names it in messages ("a network field", "a hook").
pub(crate) fn check_sig(cx: &Ctxt, sig: &Sig<'_>, what: &str) {
    let s = sig.original;
    match (sig.site, sig.receiver) {
        (Site::Impl, None) => cx.error(&s.ident, format!("{what} is a method: it takes `&mut self` (or `&self`)")),
        (Site::Impl, Some(r)) if !matches!(*r.ty, Type::Reference(_)) => {
            cx.error(r, format!("{what} takes `&mut self` or `&self`, not `self` by value"));
        }
        (Site::Interface, Some(r)) => cx.error(r, "interface fields are declarations: leave out `self`"),
        _ => {}
    }
    if !s.generics.params.is_empty() {
        cx.error(&s.generics, "network fields cannot be generic: their argument types are part of the protocol");
    }
    if let Some(a) = &s.asyncness {
        cx.error(a, "network fields run inside the node and cannot be async");
    }
    let mut seen_context = false;
    for p in &sig.params {
        if sig.site == Site::Interface {
            if let Some(span) = p.attrs.context {
                cx.error_at(span, "interface fields are declarations and have no context: leave out `#[net(context)]`");
                continue;
            }
        }
        if p.context {
            check_context(cx, p, seen_context);
            seen_context = true;
            continue;
        }
        // (in an impl, a first reference is the context)
        if matches!(p.ty, Type::Reference(_)) {
            cx.error(
                tokens(p),
                match sig.site {
                    Site::Interface => {
                        "network field arguments are owned values, not references (interface fields have no context)"
                    }
                    Site::Impl => {
                        "the context must be the first argument after `self` (or be marked `#[net(context)]`); \
                         network field arguments are owned values, not references"
                    }
                },
            );
        }
        if p.ident.is_none() {
            cx.error(&p.original.pat, "network field arguments must be plain names (`value: i32`)");
        }
    }
}

fn check_context(cx: &Ctxt, p: &Param<'_>, seen_context: bool) {
    if seen_context {
        cx.error(tokens(p), "a method takes at most one context: this is a second one");
    }
    if p.attrs.context.is_some() && !matches!(p.ty, Type::Reference(_)) {
        cx.error(p.ty, "`#[net(context)]` marks the context, a reference: `ctx: &mut ObjectContext<'_, Self>`");
    }
    if let Some(d) = &p.attrs.default {
        cx.error_at(d.span, "the context is not a wire argument: it cannot have a default");
    }
    if let Some(span) = p.attrs.variadic {
        cx.error_at(span, "the context is not a wire argument: it cannot be variadic");
    }
}

/// Checks a network field: its signature, options, defaults and variadic argument.
pub(crate) fn check_field(cx: &Ctxt, field: &Field<'_>) {
    check_sig(cx, &field.sig, "a network field");
    if let Some(auth) = &field.options.auth {
        if auth.value().is_empty() {
            cx.error(auth, "`auth` needs a non-empty permission tag");
        }
    }
    let args: Vec<_> = field.sig.args().collect();
    let mut seen_default = false;
    for (i, a) in args.iter().enumerate() {
        if a.attrs.variadic.is_some() {
            if i + 1 != args.len() {
                cx.error(tokens(a), "only the last argument can be `#[net(variadic)]`");
            }
            if a.attrs.default.is_some() {
                cx.error(tokens(a), "a variadic argument cannot have a default (it may be empty)");
            }
            if a.variadic().is_none() {
                cx.error(a.ty, "a variadic argument must be a `Vec<T>`");
            }
        } else if a.is_optional() {
            seen_default = true;
        } else if seen_default {
            let at = a.ident.map_or_else(|| a.original.pat.to_token_stream(), ToTokens::to_token_stream);
            cx.error(
                at,
                "arguments after one with a default need a default too: only trailing arguments may be left out",
            );
        }
    }
}
