//! `#[derive(NetStruct)]` and `#[derive(Message)]`: structs encoded as arrays of their fields.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, LitInt, LitStr};

use crate::ctxt::Ctxt;

struct Field<'a> {
    member: syn::Member,
    ty: &'a syn::Type,
    default: bool,
}

struct Model<'a> {
    input: &'a DeriveInput,
    fields: Vec<Field<'a>>,
    named: Option<bool>,
}

fn parse<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Model<'a> {
    let mut model = Model { input, fields: Vec::new(), named: None };
    let data = match &input.data {
        Data::Struct(s) => s,
        Data::Enum(e) => {
            cx.error(e.enum_token, "wire structs must be structs: enums have no MessagePack array form");
            return model;
        }
        Data::Union(u) => {
            cx.error(u.union_token, "wire structs must be structs, not unions");
            return model;
        }
    };
    model.named = match &data.fields {
        Fields::Named(_) => Some(true),
        Fields::Unnamed(_) => Some(false),
        Fields::Unit => None,
    };
    for (i, f) in data.fields.iter().enumerate() {
        let mut default = false;
        for attr in f.attrs.iter().filter(|a| a.path().is_ident("net")) {
            let r = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("default") {
                    if default {
                        return Err(meta.error("duplicate `default`"));
                    }
                    default = true;
                    Ok(())
                } else {
                    Err(meta.error("unknown field option; expected `default`"))
                }
            });
            if let Err(e) = r {
                cx.push(e);
            }
        }
        let member = match &f.ident {
            Some(id) => syn::Member::Named(id.clone()),
            None => syn::Member::Unnamed(syn::Index::from(i)),
        };
        model.fields.push(Field { member, ty: &f.ty, default });
    }
    // `default` fields must be trailing: the wire omits only a suffix.
    let mut seen_default = false;
    for (f, field) in model.fields.iter().zip(data.fields.iter()) {
        if f.default {
            seen_default = true;
        } else if seen_default {
            cx.error(field, "fields after a `#[net(default)]` field must be `#[net(default)]` too: only trailing arguments may be omitted");
        }
    }
    if model.fields.len() > u16::MAX as usize {
        cx.error(&input.ident, "too many fields");
    }
    model
}

pub(crate) fn derive(input: &DeriveInput, extra: Option<TokenStream>) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("net")) {
        cx.error(attr, "no container options are supported on `#[net(...)]`; put `#[net(default)]` on fields");
    }
    let model = parse(&cx, input);
    cx.check()?;
    let body = expand(&model);
    Ok(quote! {
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #body
            #extra
        };
    })
}

fn expand(m: &Model<'_>) -> TokenStream {
    let ident = &m.input.ident;
    let mut generics = m.input.generics.clone();
    {
        let wc = generics.make_where_clause();
        for f in &m.fields {
            let ty = f.ty;
            wc.predicates.push(syn::parse_quote!(#ty: ::magicnet::__private::NetType));
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let n = m.fields.len();
    let n16 = n as u16;
    let min = m.fields.iter().take_while(|f| !f.default).count() as u16;
    let p = quote!(::magicnet::__private);

    let encodes = m.fields.iter().map(|f| {
        let member = &f.member;
        quote!(#p::NetType::encode(&self.#member, w)?;)
    });
    let vars: Vec<_> = (0..n).map(|i| format_ident!("__f{}", i)).collect();
    let decodes = m.fields.iter().zip(&vars).enumerate().map(|(i, (f, v))| {
        let ty = f.ty;
        if f.default {
            quote!(let #v: #ty = if __len > #i { #p::NetType::decode(r)? } else { ::core::default::Default::default() };)
        } else {
            quote!(let #v: #ty = #p::NetType::decode(r)?;)
        }
    });
    let construct = match m.named {
        Some(true) => {
            let members = m.fields.iter().map(|f| &f.member);
            quote!(Self { #(#members: #vars),* })
        }
        Some(false) => quote!(Self( #(#vars),* )),
        None => quote!(Self),
    };
    let schemas = m.fields.iter().map(|f| {
        let ty = f.ty;
        quote!(<#ty as #p::NetType>::schema())
    });
    quote! {
        #[automatically_derived]
        impl #impl_g #p::NetType for #ident #ty_g #where_c {
            #[inline]
            fn encode(&self, w: &mut ::std::vec::Vec<u8>) -> ::core::result::Result<(), #p::EncodeError> {
                #p::write_array_len(w, #n);
                #(#encodes)*
                ::core::result::Result::Ok(())
            }
            #[inline]
            fn decode(r: &mut #p::Reader<'_>) -> ::core::result::Result<Self, #p::DecodeError> {
                let __len = r.read_array_len()?;
                if __len < #min as usize || __len > #n {
                    return ::core::result::Result::Err(#p::DecodeError::ArgumentCount { min: #min, max: #n16, found: __len });
                }
                r.enter()?;
                #(#decodes)*
                r.leave();
                ::core::result::Result::Ok(#construct)
            }
            fn schema() -> #p::Schema {
                #p::Schema::Tuple(::std::vec![#(#schemas),*])
            }
        }
    }
}

pub(crate) fn derive_message(input: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let mut id: Option<LitInt> = None;
    let mut name: Option<LitStr> = None;
    let mut unreliable = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        let r = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("id") {
                if id.is_some() {
                    return Err(meta.error("duplicate `id`"));
                }
                id = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("name") {
                if name.is_some() {
                    return Err(meta.error("duplicate `name`"));
                }
                name = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("unreliable") {
                if unreliable {
                    return Err(meta.error("duplicate `unreliable`"));
                }
                unreliable = true;
                Ok(())
            } else {
                Err(meta.error("unknown message option; expected `id = N`, `name = \"...\"` or `unreliable`"))
            }
        });
        if let Err(e) = r {
            cx.push(e);
        }
    }
    let id_value = match &id {
        None => {
            cx.error(&input.ident, "missing `#[message(id = N)]`: every message needs an id of 64 or more");
            0
        }
        Some(lit) => match lit.base10_parse::<u64>() {
            Ok(v) if v < 64 => {
                cx.error(
                    lit,
                    format!("message id {v} is reserved for the protocol (0-63); application messages use 64 and up"),
                );
                v
            }
            Ok(v) => v,
            Err(e) => {
                cx.push(e);
                0
            }
        },
    };
    cx.check()?;
    let ident = &input.ident;
    let name = name.map_or_else(|| ident.to_string(), |n| n.value());
    let delivery = if unreliable { quote!(Unreliable) } else { quote!(Reliable) };
    let (impl_g, ty_g, where_c) = input.generics.split_for_impl();
    let extra = quote! {
        #[automatically_derived]
        impl #impl_g ::magicnet::Message for #ident #ty_g #where_c {
            const ID: u64 = #id_value;
            const NAME: &'static str = #name;
            const DELIVERY: ::magicnet::Delivery = ::magicnet::Delivery::#delivery;
        }
    };
    derive(input, Some(extra))
}
