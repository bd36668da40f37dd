//! `#[derive(NetworkObject)]` with `#[network_object(name = "...", role = N, calls(...))]`:
//! the class's identity, the interfaces whose send methods the object gets, and the
//! registration of the role the object implements.
//!
//! parse ([`ast`]) -> validate ([`valid`]) -> expand ([`expand`]), or the [`fallback`].

mod ast;
mod expand;
mod fallback;
mod valid;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ctxt::Ctxt;

/// The derive.
pub(crate) fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let object = ast::Object::from_syn(&cx, input);
    valid::check(&cx, &object);
    Ok(match cx.check() {
        Ok(()) => expand::expand(&object),
        Err(errors) => fallback::expand(&object, errors),
    })
}
