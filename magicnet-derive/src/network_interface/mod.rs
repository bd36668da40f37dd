//! `#[network_interface(name = "...", role = N)]` on a trait of field declarations: the fields
//! of one role of a class, for code that calls them without implementing them. It becomes a
//! trait of typed send methods (implemented by objects through `calls(Interface)`) and the
//! registration of the role's field table.
//!
//! parse ([`ast`]) -> validate ([`valid`]) -> expand ([`mod@expand`]), or the [`fallback`].

mod ast;
mod expand;
mod fallback;
mod valid;

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::ctxt::Ctxt;

/// The attribute macro: `args` are its options, `item` the trait.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item = match syn::parse2::<syn::Item>(item)? {
        syn::Item::Trait(item) => item,
        other => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[network_interface]` goes on a trait of field declarations: \
                 `#[network_interface(name = \"...\", role = N)] pub trait MyFields { fn field(arg: i32); }`",
            )
            .into_compile_error();
            return Ok(quote!(#error #other));
        }
    };
    let cx = Ctxt::new();
    let interface = ast::Interface::from_syn(&cx, args, &item);
    valid::check(&cx, &interface);
    Ok(match cx.check() {
        Ok(()) => expand::expand(&interface),
        Err(errors) => fallback::expand(&interface, errors),
    })
}
