//! Expansion: the validator of the role's field calls (its argument decoders, as functions
//! local to the generated constant), which the registry runs on calls it only remembers.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::field::decode;
use crate::network_interface::ast::Interface;
use crate::private::{Private, local};

/// The validator's items, and its name.
pub(crate) fn expand(p: &Private, interface: &Interface<'_>) -> (TokenStream, Ident) {
    let name = Ident::new("__magicnet_validate", Span::call_site());
    let decoder_name = |i: usize| format_ident!("__magicnet_field_{}", i);
    let decoders = interface.fields().enumerate().map(|(i, f)| decode::expand(p, f, &decoder_name(i)));
    let (field, args, limits, reader) = (local("field"), local("args"), local("limits"), local("reader"));
    let arms = interface.fields().enumerate().map(|(i, _)| {
        let index = i as u8;
        let decoder = decoder_name(i);
        quote!(#index => #decoder(&mut #reader).map(|_| ()),)
    });
    let items = quote! {
        #(#decoders)*

        #[allow(unused_mut, unused_variables)]
        fn #name(#field: u8, #args: &[u8], #limits: #p::ReadLimits) -> #p::Result<(), #p::CallError> {
            let mut #reader = #p::Reader::with_limits(#args, #limits);
            match #field {
                #(#arms)*
                _ => #p::Result::Err(#p::CallError::NoField),
            }
        }
    };
    (items, name)
}
