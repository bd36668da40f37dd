//! `#[network_fields]` on an inherent impl block: its `#[network_field]` methods are the fields
//! of the object's role (in order: the field index is the wire index) and its `#[net_create]`
//! and `#[net_delete]` methods are the hooks.
//!
//! parse ([`ast`]) -> validate ([`valid`]) -> expand ([`mod@expand`]), or, after errors, a
//! [`fallback`] that keeps the user's methods and their send methods, so that the errors are
//! the only ones.

mod ast;
mod expand;
mod fallback;
mod strip;
mod valid;

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::ctxt::Ctxt;

/// The attribute macro: `args` are its options, `item` the block.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item = match syn::parse2::<syn::Item>(item)? {
        syn::Item::Impl(item) => item,
        other => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[network_fields]` goes on the impl block of a network object: `#[network_fields] impl MyObject { ... }`",
            )
            .into_compile_error();
            return Ok(quote!(#error #other));
        }
    };
    let cx = Ctxt::new();
    let block = ast::Block::from_syn(&cx, args, &item);
    valid::check(&cx, &block);
    Ok(match cx.check() {
        Ok(()) => expand::expand(&block),
        Err(errors) => fallback::expand(&block, errors),
    })
}
