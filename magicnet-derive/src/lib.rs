//! Derive macros for MagicNet. Use them through the `magicnet` crate, which re-exports them.
//!
//! Each macro parses its input into a model, validates it (collecting every error, spanned on
//! the offending tokens), then generates code that only names `::magicnet::__private`.

mod ctxt;
mod fields;
mod net_struct;
mod object;

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

/// Derives `NetworkObject` for a struct: `#[network_object(name = "...", role = N)]`,
/// optionally `calls(Interface, ...)` for the typed send methods of other roles.
#[proc_macro_derive(NetworkObject, attributes(network_object))]
pub fn derive_network_object(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    object::derive_network_object(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Marks the impl block whose `#[network_field]` methods are a class's fields (and whose
/// `#[net_create]`/`#[net_delete]` methods are its hooks).
#[proc_macro_attribute]
pub fn network_fields(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as syn::ItemImpl);
    object::network_fields(attr.into(), item).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Declares the fields of one role of a class, for code that calls them without
/// implementing them: `#[network_interface(name = "...", role = N)] pub trait X { fn f(a: i32); }`.
#[proc_macro_attribute]
pub fn network_interface(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as syn::ItemTrait);
    object::network_interface(attr.into(), item).unwrap_or_else(syn::Error::into_compile_error).into()
}
