//! Expansion: `impl NetType`, the struct as an array of its fields.

use proc_macro2::TokenStream;
use quote::quote;

use crate::net_struct::ast::{Container, Shape};
use crate::private::{Private, local};

pub(crate) fn expand(p: &Private, c: &Container<'_>) -> TokenStream {
    let ident = &c.input.ident;
    let mut generics = c.input.generics.clone();
    {
        let wc = generics.make_where_clause();
        for f in &c.fields {
            let ty = f.ty;
            wc.predicates.push(syn::parse_quote!(#ty: #p::NetType));
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let (w, r, len) = (local("w"), local("r"), local("len"));
    let n = c.fields.len();
    let n16 = n as u16;
    let min = c.fields.iter().take_while(|f| !f.default).count() as u16;
    let too_few = (min > 0).then(|| quote!(#len < #min as usize ||));

    let encodes = c.fields.iter().map(|f| {
        let member = &f.member;
        quote!(#p::NetType::encode(&self.#member, #w)?;)
    });
    let vars: Vec<_> = (0..n).map(|i| local(&format!("f{i}"))).collect();
    let decodes = c.fields.iter().zip(&vars).enumerate().map(|(i, (f, v))| {
        let ty = f.ty;
        if f.default {
            quote!(let #v: #ty = if #len > #i { #p::NetType::decode(#r)? } else { #p::Default::default() };)
        } else {
            quote!(let #v: #ty = #p::NetType::decode(#r)?;)
        }
    });
    let construct = match c.shape {
        Shape::Named => {
            let members = c.fields.iter().map(|f| &f.member);
            quote!(Self { #(#members: #vars),* })
        }
        Shape::Tuple => quote!(Self( #(#vars),* )),
        Shape::Unit | Shape::Enum(_) | Shape::Union(_) => quote!(Self),
    };
    let schemas = c.fields.iter().map(|f| {
        let ty = f.ty;
        quote!(<#ty as #p::NetType>::schema())
    });
    quote! {
        #[automatically_derived]
        impl #impl_g #p::NetType for #ident #ty_g #where_c {
            #[inline]
            fn encode(&self, #w: &mut #p::Vec<u8>) -> #p::Result<(), #p::EncodeError> {
                #p::write_array_len(#w, #n);
                #(#encodes)*
                #p::Result::Ok(())
            }

            #[inline]
            fn decode(#r: &mut #p::Reader<'_>) -> #p::Result<Self, #p::DecodeError> {
                let #len = #r.read_array_len()?;
                if #too_few #len > #n {
                    return #p::Result::Err(#p::DecodeError::ArgumentCount { min: #min, max: #n16, found: #len });
                }
                #r.enter()?;
                #(#decodes)*
                #r.leave();
                #p::Result::Ok(#construct)
            }

            fn schema() -> #p::Schema {
                #p::Schema::Tuple(#p::Vec::from([#(#schemas),*]))
            }
        }
    }
}
