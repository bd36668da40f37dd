//! Expansion: the registration of one role of a class (`inventory::submit!` of a
//! `ClassRegistration`), collected by the runtime's registry at link time.

use proc_macro2::TokenStream;
use quote::quote;

use crate::private::Private;

/// What a role registers: every part is an expression of generated code.
pub(crate) struct Registration {
    pub(crate) name: String,
    pub(crate) role: u8,
    /// `&'static [FieldDesc]`.
    pub(crate) fields: TokenStream,
    /// The Rust item that declared the role, for error messages (`Ball`, `trait BallClient`).
    pub(crate) source: String,
    /// `fn(u8, &[u8], ReadLimits) -> Result<(), CallError>`.
    pub(crate) validate: TokenStream,
    /// `Option<Implementation>`.
    pub(crate) implementation: TokenStream,
}

pub(crate) fn expand(p: &Private, r: &Registration) -> TokenStream {
    let Registration { name, role, fields, source, validate, implementation } = r;
    quote! {
        #p::inventory::submit! {
            #p::ClassRegistration {
                name: #name,
                role: #p::ObjectRole(#role),
                fields: #fields,
                source: #p::concat!(#p::module_path!(), "::", #source),
                validate: #validate,
                implementation: #implementation,
            }
        }
    }
}
