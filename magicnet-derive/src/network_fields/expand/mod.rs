//! Expansion of a checked `#[network_fields]` block: the user's block (stripped of this
//! macro's attributes), then, in one anonymous constant, the send methods, the argument
//! decoders and the `NetworkFields` implementation.

mod args;
mod fields_impl;
mod senders;

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Block;
use super::strip::strip;

pub(crate) fn expand(block: &Block<'_>) -> TokenStream {
    let p = block.private();
    let item = strip(block.item);
    let senders = senders::expand(&p, block);
    let args = args::expand(&p, block);
    let fields_impl = fields_impl::expand(&p, block);
    quote! {
        #item

        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #senders
            #args
            #fields_impl
        };
    }
}
