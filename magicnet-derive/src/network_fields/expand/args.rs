//! Expansion: the argument decoders of a block's fields, as the methods of a trait that only
//! the generated code can name (no helper methods appear on the user's type), implemented for
//! the object type so that `Self` in a `#[net(default = expr)]` is the object type.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::field::decode;
use crate::network_fields::ast::Block;
use crate::private::Private;

/// The decoders' trait (local to the generated constant).
pub(crate) fn trait_name() -> Ident {
    Ident::new("__MagicnetFieldArgs", Span::call_site())
}

/// The decoder of field `index`.
pub(crate) fn decoder_name(index: usize) -> Ident {
    format_ident!("__field_{}", index)
}

pub(crate) fn expand(p: &Private, block: &Block<'_>) -> TokenStream {
    if block.fields.is_empty() {
        return TokenStream::new();
    }
    let name = trait_name();
    let self_ty = &block.item.self_ty;
    let sigs = block.fields.iter().enumerate().map(|(i, f)| decode::signature(p, f, &decoder_name(i)));
    let fns = block.fields.iter().enumerate().map(|(i, f)| decode::expand(p, f, &decoder_name(i)));
    quote! {
        trait #name {
            #(#sigs;)*
        }

        #[automatically_derived]
        impl #name for #self_ty {
            #(#fns)*
        }
    }
}
