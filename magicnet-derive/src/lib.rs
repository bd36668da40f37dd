//! Derive macros for MagicNet. Use them through the `magicnet` crate, which re-exports them.
//!
//! Each macro parses its input into a model, validates it (collecting every error, spanned on
//! the offending tokens), then generates code that only names `::magicnet::__private`.

mod ctxt;
mod net_struct;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `NetType` for a struct encoded as an array of its fields.
#[proc_macro_derive(NetStruct, attributes(net))]
pub fn derive_net_struct(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    net_struct::derive(&input, None).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Derives `Message` (and `NetType`) for a struct of message arguments.
#[proc_macro_derive(Message, attributes(message, net))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    net_struct::derive_message(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}
