//! Expansion of a checked network object: in one anonymous constant, `impl NetworkObject`,
//! the (empty) implementations of the interfaces it calls, and its registration.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Object;
use crate::class::registration::{self, Registration};
use crate::private::Private;

/// `impl NetworkObject` (also the fallback's, with a placeholder name and role).
pub(crate) fn object_impl(p: &Private, object: &Object<'_>, name: &str, role: u8) -> TokenStream {
    let ident = &object.input.ident;
    quote! {
        #[automatically_derived]
        impl #p::NetworkObject for #ident {
            const NAME: &'static str = #name;
            const ROLE: #p::ObjectRole = #p::ObjectRole(#role);
        }
    }
}

/// `impl Interface for Object {}` for each interface in `calls(...)`: the send methods of
/// other roles' fields.
pub(crate) fn calls(object: &Object<'_>) -> TokenStream {
    let ident = &object.input.ident;
    let impls = object.class.calls.iter().map(|path| {
        quote! {
            #[automatically_derived]
            impl #path for #ident {}
        }
    });
    quote!(#(#impls)*)
}

pub(crate) fn expand(object: &Object<'_>) -> TokenStream {
    let p = object.private();
    let ident = &object.input.ident;
    let (name, role) = object.class.resolved().expect("the name and role are checked");
    let object_impl = object_impl(&p, object, &name, role);
    let calls = calls(object);
    let registration = registration::expand(
        &p,
        &Registration {
            name,
            role,
            fields: quote!(<#ident as #p::NetworkFields>::FIELDS),
            source: ident.to_string(),
            validate: quote!(#p::validate::<#ident>),
            implementation: quote!(#p::Option::Some(#p::implementation::<#ident>())),
        },
    );
    quote! {
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #object_impl
            #calls
            #registration
        };
    }
}
