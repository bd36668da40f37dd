//! Derive and attribute macros for MagicNet. Use them through the `magicnet` crate, which
//! re-exports them.
//!
//! Each macro runs the same pipeline, like `serde_derive` and `thiserror`: it **parses** the
//! input and its attributes into a model (`ast` modules: unknown and duplicate options are
//! errors), **validates** the model (`valid` modules: every rule, every error spanned on the
//! offending tokens and collected, all reported at once), then **expands** it (`expand`
//! modules, one per generated thing). After an error it still emits a minimal placeholder
//! (`fallback` modules), so that the user sees that error and no cascade.
//!
//! Generated code names only `<crate>::__private` (`::magicnet::__private` unless
//! `crate = "..."` says otherwise), sits in an anonymous constant where it can, and gives
//! every binding of its own mixed-site hygiene, so it never collides with the user's names.
//!
//! Every macro takes `crate = "path"` for a renamed dependency or a facade crate:
//! `#[network_object(crate = "...")]`, `#[network_fields(crate = "...")]`,
//! `#[network_interface(crate = "...")]`, `#[message(crate = "...")]` and, on a
//! `NetStruct`, `#[net(crate = "...")]`.

mod attr;
mod class;
mod ctxt;
mod field;
mod net_struct;
mod network_fields;
mod network_interface;
mod network_object;
mod private;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `NetType` for a struct encoded as a MessagePack array of its fields, in order.
///
/// Trailing fields marked `#[net(default)]` may be missing on the wire and take
/// `Default::default()`. `#[net(crate = "path")]` on the struct names the `magicnet` crate
/// when it is renamed or re-exported.
#[proc_macro_derive(NetStruct, attributes(net))]
pub fn derive_net_struct(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    net_struct::derive(&input, net_struct::Kind::NetStruct).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Derives `Message` (and `NetType`) for a struct of message arguments:
/// `#[message(id = N)]` (64 and up), optionally `name = "..."`, `unreliable` and
/// `crate = "path"`. Trailing fields marked `#[net(default)]` may be missing on the wire.
#[proc_macro_derive(Message, attributes(message, net))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    net_struct::derive(&input, net_struct::Kind::Message).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Derives `NetworkObject` for a struct: `#[network_object(name = "...", role = N)]`,
/// optionally `calls(Interface, ...)` for the typed send methods of other roles' fields and
/// `crate = "path"`. The struct also needs a `#[network_fields]` impl block.
#[proc_macro_derive(NetworkObject, attributes(network_object))]
pub fn derive_network_object(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    network_object::derive(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Marks the impl block whose `#[network_field]` methods are a class's fields (and whose
/// `#[net_create]`/`#[net_delete]` methods are its hooks); optionally `crate = "path"`.
///
/// Field options: `#[network_field(ram_persist = bool, auth = "tag", unreliable)]`. Argument
/// options: `#[net(default)]`, `#[net(default = expr)]`, `#[net(variadic)]` (a last
/// `Vec<T>`). A method's context is its first parameter after `self` when that is a reference
/// (`ctx: &mut ObjectContext<'_, Self>`, or an alias of it: wire arguments are owned values),
/// or the parameter marked `#[net(context)]`. Each field `f` gets a send method `send_f(&self, to, args...)`.
#[proc_macro_attribute]
pub fn network_fields(args: TokenStream, item: TokenStream) -> TokenStream {
    network_fields::expand(args.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Declares the fields of one role of a class, for code that calls them without
/// implementing them: `#[network_interface(name = "...", role = N)] pub trait X { fn f(a: i32); }`,
/// optionally with `crate = "path"`. Objects get its send methods with `calls(X)`.
#[proc_macro_attribute]
pub fn network_interface(args: TokenStream, item: TokenStream) -> TokenStream {
    network_interface::expand(args.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}
