//! Expansion of a checked wire struct: in one anonymous constant, `impl NetType` and, for a
//! message, `impl Message`.

mod message;
mod net_type;

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::Container;

pub(crate) fn expand(c: &Container<'_>) -> TokenStream {
    let p = c.private();
    let net_type = net_type::expand(&p, c);
    let message = c.attrs.message.as_ref().map(|m| message::expand(&p, c, m));
    quote! {
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #net_type
            #message
        };
    }
}
