//! After errors: the user's block (stripped of this macro's attributes), placeholder send
//! methods with the right signatures, and a placeholder `NetworkFields` implementation, so
//! that code using them reports nothing more. Nothing is registered.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Block;
use super::strip::strip;
use crate::field::send;

pub(crate) fn expand(block: &Block<'_>, errors: syn::Error) -> TokenStream {
    let errors = errors.into_compile_error();
    let item = strip(block.item);
    let Some(p) = block.krate.private() else { return quote!(#errors #item) };
    // The placeholders would add errors of their own on a generic or trait impl.
    if block.item.trait_.is_some() || !block.item.generics.params.is_empty() {
        return quote!(#errors #item);
    }
    let self_ty = &block.item.self_ty;
    let stubs = block.fields.iter().enumerate().filter_map(|(i, f)| {
        let first = !block.fields[..i].iter().any(|x| x.name == f.name);
        let plain = f.sig.original.generics.params.is_empty();
        (first && plain).then(|| send::stub(&p, f, f.vis, &TokenStream::new()))
    });
    quote! {
        #errors
        #item

        #[allow(non_upper_case_globals, unused_qualifications, unused_variables, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #self_ty {
                #(#stubs)*
            }

            #[automatically_derived]
            impl #p::NetworkFields for #self_ty {
                const FIELDS: &'static [#p::FieldDesc] = &[];
                fn __dispatch(
                    &mut self,
                    _: &mut #p::ObjectContext<'_, Self>,
                    _: u8,
                    _: &[u8],
                ) -> #p::Result<(), #p::CallError> {
                    #p::Result::Err(#p::CallError::NoField)
                }
                fn __validate(_: u8, _: &mut #p::Reader<'_>) -> #p::Result<(), #p::CallError> {
                    #p::Result::Err(#p::CallError::NoField)
                }
            }
        };
    }
}
