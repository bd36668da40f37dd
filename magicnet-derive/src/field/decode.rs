//! Expansion: a field's argument decoder, which reads the argument array of a call into a
//! tuple of its wire arguments (checking their count, filling in defaults, collecting the
//! variadic rest, and refusing trailing bytes). Dispatch and validation share it.

use proc_macro2::{Ident, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::Field;
use crate::private::{Private, local};

/// `fn name(reader: &mut Reader<'_>) -> Result<(A, B,), CallError>`, for a declaration.
pub(crate) fn signature(p: &Private, field: &Field<'_>, name: &Ident) -> TokenStream {
    let reader = local("reader");
    let tys = field.sig.args().map(|a| a.ty);
    quote!(fn #name(#reader: &mut #p::Reader<'_>) -> #p::Result<(#(#tys,)*), #p::CallError>)
}

/// The decoder function itself.
pub(crate) fn expand(p: &Private, field: &Field<'_>, name: &Ident) -> TokenStream {
    let signature = signature(p, field, name);
    let reader = local("reader");
    let n = local("n");
    let (min, max, fixed) = (field.min(), field.max(), field.fixed());
    let too_few = (min > 0).then(|| quote!(#n < #min as usize ||));
    let mut stmts = Vec::new();
    let mut vars = Vec::new();
    for (i, a) in field.sig.args().enumerate() {
        let v = local(&format!("a{i}"));
        let name = a.name();
        let ty = a.ty;
        let decode = quote_spanned! {ty.span()=>
            <#ty as #p::NetType>::decode(#reader).map_err(#p::CallError::arg(#name))?
        };
        stmts.push(match (a.variadic(), &a.attrs.default) {
            (Some(elem), _) => {
                let item = quote_spanned! {elem.span()=>
                    <#elem as #p::NetType>::decode(#reader).map_err(#p::CallError::arg(#name))?
                };
                quote! {
                    // fewer than `fixed` arguments is possible when earlier ones have defaults
                    let mut #v: #ty = #p::Vec::with_capacity(#n.saturating_sub(#fixed).min(1024));
                    for _ in #fixed..#n {
                        #v.push(#item);
                    }
                }
            }
            (None, None) => quote!(let #v: #ty = #decode;),
            (None, Some(d)) => {
                let value = match &d.expr {
                    Some(e) => quote!(#e),
                    None => quote_spanned!(d.span=> #p::Default::default()),
                };
                quote!(let #v: #ty = if #n > #i { #decode } else { #value };)
            }
        });
        vars.push(v);
    }
    quote! {
        #signature {
            let #n = #reader.read_array_len().map_err(#p::CallError::arg("arguments"))?;
            if #too_few #n > #max as usize {
                return #p::Result::Err(#p::CallError::BadArgs {
                    arg: "arguments",
                    error: #p::DecodeError::ArgumentCount { min: #min, max: #max, found: #n },
                });
            }
            #reader.enter().map_err(#p::CallError::arg("arguments"))?;
            #(#stmts)*
            #reader.leave();
            #reader.finish().map_err(#p::CallError::arg("arguments"))?;
            #p::Result::Ok((#(#vars,)*))
        }
    }
}
