//! Expansion of a checked interface: the trait of send methods, then, in one anonymous
//! constant, the argument decoders, the validator and the registration of the role.

pub(crate) mod senders;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Interface;
use crate::class::registration::{self, Registration};

pub(crate) fn expand(interface: &Interface<'_>) -> TokenStream {
    let p = interface.private();
    let (name, role) = interface.class.resolved().expect("the name and role are checked");
    let senders = senders::expand(&p, interface, &name, role);
    let (validate, validate_fn) = validate::expand(&p, interface);
    let descs = interface.fields().map(|f| crate::field::desc::expand(&p, f));
    let registration = registration::expand(
        &p,
        &Registration {
            name,
            role,
            fields: quote!(&[#(#descs),*]),
            source: format!("trait {}", interface.item.ident),
            validate: quote!(#validate_fn),
            implementation: quote!(#p::Option::None),
        },
    );
    quote! {
        #senders

        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #validate
            #registration
        };
    }
}
