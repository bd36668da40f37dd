//! Expansion: the interface trait itself, whose default methods are the typed send methods of
//! the role's fields. Each checks, at compile time, that the object it is called on has the
//! interface's network name.

use proc_macro2::TokenStream;
use quote::quote;

use crate::field::send::{self, SendFn};
use crate::network_interface::ast::Interface;
use crate::private::Private;

/// The trait's doc comments, then a line saying what it is for.
pub(crate) fn header(interface: &Interface<'_>, doc: &str) -> TokenStream {
    let docs = interface.item.attrs.iter().filter(|a| a.path().is_ident("doc"));
    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #doc]
    }
}

/// The documentation line of an interface of role `role` of `name`.
pub(crate) fn doc(name: &str, role: u8) -> String {
    format!("Calls to role {role} of network object `{name}` (a MagicNet network interface).")
}

pub(crate) fn expand(p: &Private, interface: &Interface<'_>, name: &str, role: u8) -> TokenStream {
    let check = quote! {
        const {
            #p::assert!(
                #p::str_eq(<Self as #p::NetworkObject>::NAME, #name),
                #p::concat!("this interface is for network objects named `", #name, "`")
            )
        };
    };
    let methods = interface.fields().enumerate().map(|(i, f)| {
        let s = SendFn {
            vis: None,
            role: quote!(#p::ObjectRole(#role)),
            index: i as u8,
            where_clause: quote!(where Self: #p::Sized),
            prefix: check.clone(),
        };
        send::expand(p, f, &s)
    });
    let header = header(interface, &doc(name, role));
    let vis = &interface.item.vis;
    let ident = &interface.item.ident;
    quote! {
        #header
        #vis trait #ident: #p::NetworkObject {
            #(#methods)*
        }
    }
}
