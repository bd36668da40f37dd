//! Expansion: the typed send methods of a block's fields, `send_<field>(&self, to, args...)`,
//! inherent methods of the object type with the visibility of their field.

use proc_macro2::TokenStream;
use quote::quote;

use crate::field::send::{self, SendFn};
use crate::network_fields::ast::Block;
use crate::private::Private;

pub(crate) fn expand(p: &Private, block: &Block<'_>) -> TokenStream {
    if block.fields.is_empty() {
        return TokenStream::new();
    }
    let self_ty = &block.item.self_ty;
    let role = quote!(<Self as #p::NetworkObject>::ROLE);
    let methods = block.fields.iter().enumerate().map(|(i, f)| {
        let s = SendFn { vis: f.vis, role: role.clone(), index: i as u8, where_clause: quote!(), prefix: quote!() };
        send::expand(p, f, &s)
    });
    quote! {
        #[automatically_derived]
        impl #self_ty {
            #(#methods)*
        }
    }
}
