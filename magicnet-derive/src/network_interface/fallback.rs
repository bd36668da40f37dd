//! After errors: the trait, with placeholder send methods of the right signatures (so that
//! objects listing it in `calls(...)` and code calling it report nothing more). Nothing is
//! registered.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Interface;
use super::expand::senders::{doc, header};
use crate::field::send;

pub(crate) fn expand(interface: &Interface<'_>, errors: syn::Error) -> TokenStream {
    let errors = errors.into_compile_error();
    let vis = &interface.item.vis;
    let ident = &interface.item.ident;
    let Some(p) = interface.class.krate.private() else {
        return quote!(#errors #vis trait #ident {});
    };
    let fields: Vec<_> = interface.fields().collect();
    let where_clause = quote!(where Self: #p::Sized);
    let stubs = fields.iter().enumerate().filter_map(|(i, f)| {
        let first = !fields[..i].iter().any(|x| x.name == f.name);
        let plain = f.sig.original.generics.params.is_empty();
        (first && plain).then(|| send::stub(&p, f, None, &where_clause))
    });
    let header = match interface.class.resolved() {
        Some((name, role)) => header(interface, &doc(&name, role)),
        None => header(interface, "A MagicNet network interface."),
    };
    quote! {
        #errors

        #header
        #[allow(unused_variables)]
        #vis trait #ident: #p::NetworkObject {
            #(#stubs)*
        }
    }
}
