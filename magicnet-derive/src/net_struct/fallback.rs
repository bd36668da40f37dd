//! After errors: placeholder `NetType` (and `Message`) implementations, so that code using the
//! type (as a field, or a message in a processor) reports nothing more.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Container;

pub(crate) fn expand(c: &Container<'_>, errors: syn::Error) -> TokenStream {
    let errors = errors.into_compile_error();
    let Some(p) = c.attrs.krate.private() else { return errors };
    let ident = &c.input.ident;
    let (impl_g, ty_g, where_c) = c.input.generics.split_for_impl();
    let message = c.attrs.message.as_ref().map(|_| {
        let name = ident.to_string();
        quote! {
            #[automatically_derived]
            impl #impl_g #p::Message for #ident #ty_g #where_c {
                const ID: u64 = 0;
                const NAME: &'static str = #name;
            }
        }
    });
    quote! {
        #errors

        #[allow(non_upper_case_globals, unused_qualifications, unused_variables, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #impl_g #p::NetType for #ident #ty_g #where_c {
                fn encode(&self, _: &mut #p::Vec<u8>) -> #p::Result<(), #p::EncodeError> {
                    #p::unreachable!()
                }
                fn decode(_: &mut #p::Reader<'_>) -> #p::Result<Self, #p::DecodeError> {
                    #p::unreachable!()
                }
                fn schema() -> #p::Schema {
                    #p::unreachable!()
                }
            }
            #message
        };
    }
}
