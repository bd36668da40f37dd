//! Expansion: `impl NetworkFields`: the field table, the dispatcher (decode, remember, call,
//! report), the validator, and the hooks.

use proc_macro2::{Ident, TokenStream};
use quote::quote;
use syn::spanned::Spanned;

use super::args::{decoder_name, trait_name};
use crate::field::Sig;
use crate::field::desc;
use crate::network_fields::ast::{Block, HookKind};
use crate::private::{Private, local, local_at};

/// The arguments of a call to a method with signature `sig`: the context where it takes it,
/// and `vars` (the decoded wire arguments) in order.
fn call_args(sig: &Sig<'_>, vars: &[Ident]) -> Vec<TokenStream> {
    let mut vars = vars.iter();
    sig.params
        .iter()
        .map(|p| {
            if p.context {
                // located at the user's parameter: a type that is not the context is reported there
                let ctx = local_at("ctx", p.original.pat.span());
                quote!(#ctx)
            } else {
                let v = vars.next();
                quote!(#v)
            }
        })
        .collect()
}

fn hook(p: &Private, block: &Block<'_>, kind: HookKind) -> TokenStream {
    let Some(h) = block.hook(kind) else { return TokenStream::new() };
    let trait_method = Ident::new(kind.trait_method(), proc_macro2::Span::call_site());
    let ctx = local("ctx");
    let method = h.ident;
    let args = call_args(&h.sig, &[]);
    quote! {
        fn #trait_method(&mut self, #ctx: &mut #p::ObjectContext<'_, Self>) {
            let _ = #p::FieldReturn::into_error(self.#method(#(#args),*));
        }
    }
}

pub(crate) fn expand(p: &Private, block: &Block<'_>) -> TokenStream {
    let self_ty = &block.item.self_ty;
    let args_trait = trait_name();
    let (ctx, args, field, reader, ret) = (local("ctx"), local("args"), local("field"), local("reader"), local("ret"));
    let descs = block.fields.iter().map(|f| desc::expand(p, f));
    let dispatch_arms = block.fields.iter().enumerate().map(|(i, f)| {
        let index = i as u8;
        let decoder = decoder_name(i);
        let vars: Vec<Ident> = (0..f.sig.args().count()).map(|k| local(&format!("a{k}"))).collect();
        let call = call_args(&f.sig, &vars);
        let method = f.name;
        let name = f.name.to_string();
        quote! {
            #index => {
                let mut #reader = #p::field_reader(#ctx, #args);
                let (#(#vars,)*) = <Self as #args_trait>::#decoder(&mut #reader)?;
                #p::remember(#ctx, #args);
                let #ret = self.#method(#(#call),*);
                #p::report(#ctx, #name, #p::FieldReturn::into_error(#ret));
                #p::Result::Ok(())
            }
        }
    });
    let validate_arms = block.fields.iter().enumerate().map(|(i, _)| {
        let index = i as u8;
        let decoder = decoder_name(i);
        quote!(#index => <Self as #args_trait>::#decoder(#reader).map(|_| ()),)
    });
    let create = hook(p, block, HookKind::Create);
    let delete = hook(p, block, HookKind::Delete);
    quote! {
        #[automatically_derived]
        #[allow(unused_variables)]
        impl #p::NetworkFields for #self_ty {
            const FIELDS: &'static [#p::FieldDesc] = &[#(#descs),*];

            fn __dispatch(
                &mut self,
                #ctx: &mut #p::ObjectContext<'_, Self>,
                #field: u8,
                #args: &[u8],
            ) -> #p::Result<(), #p::CallError> {
                match #field {
                    #(#dispatch_arms)*
                    _ => #p::Result::Err(#p::CallError::NoField),
                }
            }

            fn __validate(#field: u8, #reader: &mut #p::Reader<'_>) -> #p::Result<(), #p::CallError> {
                match #field {
                    #(#validate_arms)*
                    _ => #p::Result::Err(#p::CallError::NoField),
                }
            }

            #create
            #delete
        }
    }
}
