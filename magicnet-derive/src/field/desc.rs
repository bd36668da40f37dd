//! Expansion: a field's entry in the field table (`FieldDesc`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::Field;
use super::attr::FieldOptions;
use crate::private::Private;

/// `FieldDesc { name, args, persist, auth, unreliable }`, a constant expression.
pub(crate) fn expand(p: &Private, field: &Field<'_>) -> TokenStream {
    let name = field.name.to_string();
    let FieldOptions { persist, auth, unreliable } = &field.options;
    let auth = match auth {
        Some(tag) => quote!(#p::Option::Some(#tag)),
        None => quote!(#p::Option::None),
    };
    let args = field.sig.args().map(|a| {
        let name = a.name();
        let optional = a.is_optional();
        let variadic = a.attrs.variadic.is_some();
        let ty = a.variadic().unwrap_or(a.ty);
        let schema = quote_spanned!(ty.span()=> <#ty as #p::NetType>::schema);
        quote!(#p::ArgDesc { name: #name, schema: #schema, optional: #optional, variadic: #variadic })
    });
    quote! {
        #p::FieldDesc { name: #name, args: &[#(#args),*], persist: #persist, auth: #auth, unreliable: #unreliable }
    }
}
