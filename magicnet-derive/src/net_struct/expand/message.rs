//! Expansion: `impl Message`, the message's id, name and delivery.

use proc_macro2::TokenStream;
use quote::quote;

use crate::net_struct::ast::Container;
use crate::net_struct::attr::MessageAttrs;
use crate::private::Private;

pub(crate) fn expand(p: &Private, c: &Container<'_>, m: &MessageAttrs) -> TokenStream {
    let ident = &c.input.ident;
    let id = m.id.as_ref().and_then(|lit| lit.base10_parse::<u64>().ok()).expect("the id is checked");
    let name = m.name.as_ref().map_or_else(|| ident.to_string(), syn::LitStr::value);
    let delivery = if m.unreliable { quote!(Unreliable) } else { quote!(Reliable) };
    let (impl_g, ty_g, where_c) = c.input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_g #p::Message for #ident #ty_g #where_c {
            const ID: u64 = #id;
            const NAME: &'static str = #name;
            const DELIVERY: #p::Delivery = #p::Delivery::#delivery;
        }
    }
}
