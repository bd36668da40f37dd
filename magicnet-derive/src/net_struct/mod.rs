//! `#[derive(NetStruct)]` and `#[derive(Message)]`: structs encoded as MessagePack arrays of
//! their fields (trailing `#[net(default)]` fields may be missing), and messages, which are
//! such structs with an id (`#[message(id = N)]`, 64 and up).
//!
//! parse ([`ast`], [`attr`]) -> validate ([`valid`]) -> expand ([`expand`]), or the
//! [`fallback`].

mod ast;
mod attr;
mod expand;
mod fallback;
mod valid;

use proc_macro2::TokenStream;
use syn::DeriveInput;

pub(crate) use attr::Kind;

use crate::ctxt::Ctxt;

/// The derive of `kind`.
pub(crate) fn derive(input: &DeriveInput, kind: Kind) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let container = ast::Container::from_syn(&cx, input, kind);
    valid::check(&cx, &container);
    Ok(match cx.check() {
        Ok(()) => expand::expand(&container),
        Err(errors) => fallback::expand(&container, errors),
    })
}
