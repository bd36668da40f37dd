//! `#[derive(NetworkObject)]`, `#[network_fields]` and `#[network_interface]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{DeriveInput, ImplItem, ItemImpl, ItemTrait, LitInt, LitStr, Path, TraitItem, Visibility};

use crate::ctxt::Ctxt;
use crate::fields::{self, Field};

/// `name = "..."`, `role = N` (and, for objects, `calls(Path, ...)`).
struct ClassArgs {
    name: Option<LitStr>,
    role: Option<LitInt>,
    calls: Vec<Path>,
}

fn parse_class_args(
    cx: &Ctxt,
    meta: syn::meta::ParseNestedMeta<'_>,
    args: &mut ClassArgs,
    allow_calls: bool,
) -> syn::Result<()> {
    if meta.path.is_ident("name") {
        if args.name.is_some() {
            return Err(meta.error("duplicate `name`"));
        }
        let v: LitStr = meta.value()?.parse()?;
        if v.value().is_empty() {
            cx.error(&v, "the network name cannot be empty");
        }
        args.name = Some(v);
        Ok(())
    } else if meta.path.is_ident("role") {
        if args.role.is_some() {
            return Err(meta.error("duplicate `role`"));
        }
        let v: LitInt = meta.value()?.parse()?;
        if v.base10_parse::<u8>().is_err() {
            cx.error(&v, "the role must be an integer from 0 to 255");
        }
        args.role = Some(v);
        Ok(())
    } else if allow_calls && meta.path.is_ident("calls") {
        meta.parse_nested_meta(|inner| {
            args.calls.push(inner.path);
            Ok(())
        })
    } else if allow_calls {
        Err(meta.error("unknown option; expected `name = \"...\"`, `role = N` or `calls(Interface, ...)`"))
    } else {
        Err(meta.error("unknown option; expected `name = \"...\"` or `role = N`"))
    }
}

fn require(cx: &Ctxt, args: &ClassArgs, span: impl quote::ToTokens, what: &str) -> Option<(String, u8)> {
    let name = args.name.as_ref().map(LitStr::value);
    let role = args.role.as_ref().and_then(|r| r.base10_parse::<u8>().ok());
    if args.name.is_none() {
        cx.error(&span, format!("missing network name: add `name = \"...\"` to {what}"));
    }
    if args.role.is_none() {
        cx.error(&span, format!("missing role: add `role = N` to {what} (e.g. client 0, server 1)"));
    }
    Some((name?, role?))
}

pub(crate) fn derive_network_object(input: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let mut args = ClassArgs { name: None, role: None, calls: Vec::new() };
    let mut found = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("network_object")) {
        found = true;
        if let Err(e) = attr.parse_nested_meta(|meta| parse_class_args(&cx, meta, &mut args, true)) {
            cx.push(e);
        }
    }
    if !found {
        cx.error(&input.ident, "missing `#[network_object(name = \"...\", role = N)]`");
    }
    if !input.generics.params.is_empty() {
        cx.error(&input.generics, "network objects cannot be generic: each class is registered once, by name");
    }
    if !matches!(input.data, syn::Data::Struct(_)) {
        cx.error(&input.ident, "network objects must be structs");
    }
    let checked = if found { require(&cx, &args, &input.ident, "`#[network_object(...)]`") } else { None };
    let ident = &input.ident;
    if let Err(e) = cx.check() {
        // A placeholder impl (not registered) keeps the errors above from cascading.
        let errors = e.into_compile_error();
        let fallback = input.generics.params.is_empty().then(|| {
            quote! {
                impl ::magicnet::object::NetworkObject for #ident {
                    const NAME: &'static str = "";
                    const ROLE: ::magicnet::__private::ObjectRole = ::magicnet::__private::ObjectRole(0);
                }
            }
        });
        return Ok(quote!(#errors #fallback));
    }
    let Some((name, role)) = checked else { return Ok(TokenStream::new()) };

    let p = quote!(::magicnet::__private);
    let calls = args.calls.iter().map(|path| {
        quote! {
            #[automatically_derived]
            impl #path for #ident {}
        }
    });
    let source = ident.to_string();
    Ok(quote! {
        #[automatically_derived]
        impl ::magicnet::object::NetworkObject for #ident {
            const NAME: &'static str = #name;
            const ROLE: #p::ObjectRole = #p::ObjectRole(#role);
        }
        #(#calls)*
        #[allow(non_upper_case_globals, clippy::all)]
        const _: () = {
            #p::inventory::submit! {
                #p::ClassRegistration {
                    name: #name,
                    role: #p::ObjectRole(#role),
                    fields: <#ident as ::magicnet::object::NetworkFields>::FIELDS,
                    source: ::core::concat!(::core::module_path!(), "::", #source),
                    validate: #p::validate::<#ident>,
                    implementation: ::core::option::Option::Some(#p::implementation::<#ident>()),
                }
            }
        };
    })
}

/// A hook method (`#[net_create]` / `#[net_delete]`): its name and whether it takes the context.
struct Hook {
    ident: syn::Ident,
    has_ctx: bool,
}

pub(crate) fn network_fields(attr: TokenStream, mut item: ItemImpl) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    if !attr.is_empty() {
        cx.error(&attr, "`#[network_fields]` takes no arguments");
    }
    if let Some((_, path, _)) = &item.trait_ {
        cx.error(path, "`#[network_fields]` goes on an inherent impl block (`impl MyObject { ... }`)");
    }
    if !item.generics.params.is_empty() {
        cx.error(&item.generics, "network objects cannot be generic");
    }
    let mut fields: Vec<Field> = Vec::new();
    let mut create: Option<Hook> = None;
    let mut delete: Option<Hook> = None;
    for it in item.items.iter_mut() {
        let ImplItem::Fn(f) = it else { continue };
        let mut is_field = false;
        let mut opts = fields::FieldOptions::default();
        let mut hook = None;
        let mut keep = Vec::new();
        for a in f.attrs.drain(..) {
            if a.path().is_ident("network_field") {
                if is_field {
                    cx.error(&a, "duplicate `#[network_field]`");
                }
                is_field = true;
                fields::parse_field_options(&cx, &a, &mut opts);
            } else if a.path().is_ident("net_create") || a.path().is_ident("net_delete") {
                hook = Some((a.path().is_ident("net_create"), a));
            } else {
                keep.push(a);
            }
        }
        f.attrs = keep;
        if let Some((is_create, a)) = hook {
            if is_field {
                cx.error(&a, "a method is either a network field or a hook, not both");
            }
            let (extra, has_ctx) = fields::parse_signature(&cx, &mut f.sig, true);
            if !extra.is_empty() {
                cx.error(&f.sig.inputs, "`net_create`/`net_delete` take only `&mut self` and optionally the context");
            }
            let slot = if is_create { &mut create } else { &mut delete };
            if slot.is_some() {
                cx.error(&a, "only one method can be this hook");
            }
            *slot = Some(Hook { ident: f.sig.ident.clone(), has_ctx });
            continue;
        }
        if !is_field {
            continue;
        }
        let (args, has_ctx) = fields::parse_signature(&cx, &mut f.sig, true);
        if let Some(prev) = fields.iter().find(|x| x.name == f.sig.ident) {
            cx.error(&f.sig.ident, format!("duplicate network field `{}`", prev.name));
        }
        fields.push(Field {
            name: f.sig.ident.clone(),
            vis: f.vis.clone(),
            args,
            persist: opts.persist,
            auth: opts.auth,
            unreliable: opts.unreliable,
            has_ctx,
            span: f.sig.ident.span(),
        });
    }
    if fields.len() > 256 {
        cx.error(&item.self_ty, "at most 256 network fields per role (field indexes are one byte)");
    }
    let self_ty = &item.self_ty;
    let p = quote!(::magicnet::__private);
    if let Err(e) = cx.check() {
        // Keep the methods and a placeholder field table, so the user sees these errors only.
        let errors = e.into_compile_error();
        return Ok(quote! {
            #errors
            #item
            impl ::magicnet::object::NetworkFields for #self_ty {
                const FIELDS: &'static [#p::FieldDesc] = &[];
                fn __dispatch(
                    &mut self,
                    _: &mut ::magicnet::object::ObjectContext<'_, Self>,
                    _: u8,
                    _: &[u8],
                ) -> ::core::result::Result<(), #p::CallError> {
                    ::core::result::Result::Err(#p::CallError::NoField)
                }
                fn __validate(_: u8, _: &mut #p::Reader<'_>) -> ::core::result::Result<(), #p::CallError> {
                    ::core::result::Result::Err(#p::CallError::NoField)
                }
            }
        });
    }

    let descs = fields.iter().map(Field::desc);
    let decoders = fields.iter().enumerate().map(|(i, f)| f.decoder(&format_ident!("__magicnet_decode_{}", i)));
    let role = quote!(<Self as ::magicnet::object::NetworkObject>::ROLE);
    let senders = fields.iter().enumerate().map(|(i, f)| f.sender(&role, i as u8, &f.vis, quote!(), quote!()));
    let dispatch_arms = fields.iter().enumerate().map(|(i, f)| {
        let i8 = i as u8;
        let dec = format_ident!("__magicnet_decode_{}", i);
        let vars: Vec<_> = (0..f.args.len()).map(|k| format_ident!("__a{}", k)).collect();
        let method = &f.name;
        let ctx_arg = if f.has_ctx { quote!(ctx,) } else { quote!() };
        let name = f.name.to_string();
        quote! {
            #i8 => {
                let mut __r = #p::field_reader(ctx, args);
                let (#(#vars,)*) = Self::#dec(&mut __r)?;
                #p::remember(ctx, args);
                let __ret = self.#method(#ctx_arg #(#vars),*);
                #p::report(ctx, #name, #p::FieldReturn::into_error(__ret));
                ::core::result::Result::Ok(())
            }
        }
    });
    let validate_arms = fields.iter().enumerate().map(|(i, _)| {
        let i8 = i as u8;
        let dec = format_ident!("__magicnet_decode_{}", i);
        quote!(#i8 => Self::#dec(r).map(|_| ()),)
    });
    let hook = |h: &Option<Hook>, name: &str| -> TokenStream {
        let fn_name = format_ident!("{}", name);
        match h {
            None => quote!(),
            Some(Hook { ident, has_ctx }) => {
                let call = if *has_ctx { quote!(self.#ident(ctx)) } else { quote!({ let _ = ctx; self.#ident() }) };
                quote! {
                    fn #fn_name(&mut self, ctx: &mut ::magicnet::object::ObjectContext<'_, Self>) {
                        #p::FieldReturn::into_error(#call);
                    }
                }
            }
        }
    };
    let create_hook = hook(&create, "__net_create");
    let delete_hook = hook(&delete, "__net_delete");
    Ok(quote! {
        #item

        #[automatically_derived]
        #[allow(clippy::all)]
        impl #self_ty {
            #(#decoders)*
            #(#senders)*
        }

        #[automatically_derived]
        #[allow(clippy::all, unused_variables)]
        impl ::magicnet::object::NetworkFields for #self_ty {
            const FIELDS: &'static [#p::FieldDesc] = &[#(#descs),*];

            fn __dispatch(
                &mut self,
                ctx: &mut ::magicnet::object::ObjectContext<'_, Self>,
                field: u8,
                args: &[u8],
            ) -> ::core::result::Result<(), #p::CallError> {
                match field {
                    #(#dispatch_arms)*
                    _ => ::core::result::Result::Err(#p::CallError::NoField),
                }
            }

            fn __validate(field: u8, r: &mut #p::Reader<'_>) -> ::core::result::Result<(), #p::CallError> {
                match field {
                    #(#validate_arms)*
                    _ => ::core::result::Result::Err(#p::CallError::NoField),
                }
            }

            #create_hook
            #delete_hook
        }
    })
}

pub(crate) fn network_interface(attr: TokenStream, mut item: ItemTrait) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let mut args = ClassArgs { name: None, role: None, calls: Vec::new() };
    let parser = syn::meta::parser(|meta| parse_class_args(&cx, meta, &mut args, false));
    if let Err(e) = syn::parse::Parser::parse2(parser, attr.clone()) {
        cx.push(e);
    }
    let checked = require(&cx, &args, &item.ident, "`#[network_interface(...)]`");
    if !item.generics.params.is_empty() {
        cx.error(&item.generics, "network interfaces cannot be generic");
    }
    if !item.supertraits.is_empty() {
        cx.error(&item.supertraits, "network interfaces have no supertraits");
    }
    let mut fields = Vec::new();
    for it in item.items.iter_mut() {
        let TraitItem::Fn(f) = it else {
            cx.error(&*it, "a network interface only declares fields: `fn name(arg: Type, ...);`");
            continue;
        };
        if f.default.is_some() {
            cx.error(&f.sig.ident, "interface fields are declarations: end them with `;`, no body");
        }
        if !matches!(f.sig.output, syn::ReturnType::Default) {
            cx.error(&f.sig.output, "network fields return nothing across the network");
        }
        let mut opts = fields::FieldOptions::default();
        for a in &f.attrs {
            if a.path().is_ident("network_field") {
                fields::parse_field_options(&cx, a, &mut opts);
            } else if !a.path().is_ident("doc") {
                cx.error(a, "only `#[network_field(...)]` and doc comments are allowed on interface fields");
            }
        }
        let (fargs, _) = fields::parse_signature(&cx, &mut f.sig, false);
        if let Some(prev) = fields.iter().find(|x: &&Field| x.name == f.sig.ident) {
            cx.error(&f.sig.ident, format!("duplicate network field `{}`", prev.name));
        }
        fields.push(Field {
            name: f.sig.ident.clone(),
            vis: Visibility::Inherited,
            args: fargs,
            persist: opts.persist,
            auth: opts.auth,
            unreliable: opts.unreliable,
            has_ctx: false,
            span: f.sig.ident.span(),
        });
    }
    if fields.len() > 256 {
        cx.error(&item.ident, "at most 256 network fields per role (field indexes are one byte)");
    }
    cx.check()?;
    let Some((name, role)) = checked else { return Ok(TokenStream::new()) };

    let p = quote!(::magicnet::__private);
    let vis = &item.vis;
    let ident = &item.ident;
    let attrs: Vec<_> = item.attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let role_tokens = quote!(::magicnet::__private::ObjectRole(#role));
    let check = quote! {
        const {
            ::core::assert!(
                #p::str_eq(<Self as ::magicnet::object::NetworkObject>::NAME, #name),
                ::core::concat!("this interface is for network objects named `", #name, "`")
            )
        };
    };
    let senders = fields.iter().enumerate().map(|(i, f)| {
        f.sender(&role_tokens, i as u8, &Visibility::Inherited, quote!(where Self: Sized), check.clone())
    });
    let descs = fields.iter().map(Field::desc);
    let decoders = fields.iter().enumerate().map(|(i, f)| f.decoder(&format_ident!("__magicnet_decode_{}", i)));
    let validate_arms = fields.iter().enumerate().map(|(i, _)| {
        let i8 = i as u8;
        let dec = format_ident!("__magicnet_decode_{}", i);
        quote!(#i8 => #dec(&mut r).map(|_| ()),)
    });
    let source = format!("trait {ident}");
    let doc = format!("Calls to role {role} of network object `{name}` (a MagicNet network interface).");
    Ok(quote! {
        #(#attrs)*
        #[doc = ""]
        #[doc = #doc]
        #vis trait #ident: ::magicnet::object::NetworkObject {
            #(#senders)*
        }

        #[allow(non_upper_case_globals, clippy::all, unused_comparisons)]
        const _: () = {
            #(#decoders)*

            fn __validate(field: u8, args: &[u8], limits: #p::ReadLimits) -> ::core::result::Result<(), #p::CallError> {
                let mut r = #p::Reader::with_limits(args, limits);
                match field {
                    #(#validate_arms)*
                    _ => ::core::result::Result::Err(#p::CallError::NoField),
                }
            }

            #p::inventory::submit! {
                #p::ClassRegistration {
                    name: #name,
                    role: #p::ObjectRole(#role),
                    fields: &[#(#descs),*],
                    source: ::core::concat!(::core::module_path!(), "::", #source),
                    validate: __validate,
                    implementation: ::core::option::Option::None,
                }
            }
        };
    })
}
