//! After errors: a placeholder `impl NetworkObject` (and the interfaces it calls), not
//! registered, so that code using the type reports nothing more.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Object;
use super::expand::{calls, object_impl};

pub(crate) fn expand(object: &Object<'_>, errors: syn::Error) -> TokenStream {
    let errors = errors.into_compile_error();
    // A generic type's placeholder would add errors of its own.
    let Some(p) = object.class.krate.private().filter(|_| object.input.generics.params.is_empty()) else {
        return errors;
    };
    let object_impl = object_impl(&p, object, "", 0);
    let calls = calls(object);
    quote! {
        #errors

        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #object_impl
            #calls
        };
    }
}
