//! Unit tests of the expansions' shape: every path goes through `<crate>::__private`, the
//! crate path is honoured, generated items sit in an anonymous constant, and the only methods
//! added to the user's type are its send methods. (What the code does is tested by the
//! integration tests, which compile it.)

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::{ImplItem, Item};

use crate::net_struct::{self, Kind};
use crate::{network_fields, network_interface, network_object};

/// The names the runtime re-exports in `__private`: generated code must name them only there.
const RUNTIME_NAMES: &[&str] = &[
    "NetworkObject",
    "NetworkFields",
    "NetType",
    "Message",
    "Delivery",
    "FieldTarget",
    "ObjectContext",
    "ObjectRole",
    "SendError",
    "DecodeError",
    "EncodeError",
    "CallError",
    "FieldReturn",
    "FieldDesc",
    "ArgDesc",
    "ClassRegistration",
    "Reader",
    "ReadLimits",
    "Schema",
    "inventory",
    "Result",
    "Option",
    "Vec",
    "Default",
    "Sized",
    "concat",
    "module_path",
    "unreachable",
    "assert",
];

/// Tokens as text, groups flattened (`::` is two `:`).
fn flatten(ts: TokenStream, out: &mut Vec<String>) {
    for tt in ts {
        match tt {
            TokenTree::Group(g) => flatten(g.stream(), out),
            TokenTree::Ident(i) => out.push(i.to_string()),
            TokenTree::Punct(p) => out.push(p.as_char().to_string()),
            TokenTree::Literal(l) => out.push(l.to_string()),
        }
    }
}

/// Checks every path of `output` against the crate path `krate` (`magicnet` or a rename).
fn check_paths(output: &TokenStream, krate: &str) {
    let mut t = Vec::new();
    flatten(output.clone(), &mut t);
    let at = |i: usize| t.get(i).map_or("", String::as_str);
    for i in 0..t.len() {
        let name = at(i);
        let before = |k: usize| if i >= k { at(i - k) } else { "" };
        let context = t[i.saturating_sub(6)..(i + 4).min(t.len())].join(" ");
        match name {
            // `syn::Error::into_compile_error` names `::core::compile_error!`
            "core" | "std" | "alloc" => {
                assert_eq!((at(i + 3), before(1)), ("compile_error", ":"), "a std path outside __private: {context}")
            }
            "magicnet" | "mn" => {
                assert_eq!(name, krate, "the crate path is not honoured: {context}");
                assert_eq!(
                    (at(i + 1), at(i + 2), at(i + 3)),
                    (":", ":", "__private"),
                    "not through __private: {context}"
                );
            }
            // the user's own tokens, echoed (inputs write their paths as `user::...`)
            n if RUNTIME_NAMES.contains(&n) && before(3) == "user" => {}
            n if RUNTIME_NAMES.contains(&n) => {
                assert_eq!(
                    (before(3), before(2), before(1)),
                    ("__private", ":", ":"),
                    "not through __private: {context}"
                );
            }
            _ => {}
        }
    }
    if krate != "magicnet" {
        assert!(!t.iter().any(|x| x == "magicnet"), "`magicnet` named despite the crate path");
    }
}

fn derive(kind: Option<Kind>, input: TokenStream) -> TokenStream {
    let input = syn::parse2(input).unwrap();
    match kind {
        Some(kind) => net_struct::derive(&input, kind),
        None => network_object::derive(&input),
    }
    .unwrap()
}

fn fields(args: TokenStream, item: TokenStream) -> TokenStream {
    network_fields::expand(args, item).unwrap()
}

fn interface(args: TokenStream, item: TokenStream) -> TokenStream {
    network_interface::expand(args, item).unwrap()
}

fn fields_block() -> TokenStream {
    quote! {
        impl Ball {
            #[network_field]
            fn kick(&mut self, ctx: &mut Ctx<'_>, to: u8, #[net(default = 3)] d: u8, #[net(variadic)] v: user::Vec<u8>) {}
            #[network_field(ram_persist = false, auth = "admin", unreliable)]
            fn mark(&mut self, value: u8, #[net(context)] ctx: &mut Ctx<'_>) {}
            #[net_create]
            fn made(&mut self) {}
            #[net_delete]
            fn gone(&mut self, ctx: &mut Ctx<'_>) {}
            fn helper(&self) {}
        }
    }
}

/// Every expansion, valid and after errors, with the default crate path or `mn`.
fn expansions(krate: Option<&str>) -> Vec<TokenStream> {
    let opt = krate.map(|k| quote!(crate = #k));
    let comma_opt = krate.map(|k| quote!(, crate = #k));
    vec![
        derive(
            Some(Kind::NetStruct),
            quote!(
                #[net(#opt)]
                struct P {
                    x: u8,
                    #[net(default)]
                    y: u16,
                }
            ),
        ),
        derive(
            Some(Kind::NetStruct),
            quote!(
                #[net(#opt)]
                struct Bad {
                    #[net(default)]
                    x: u8,
                    y: u16,
                }
            ),
        ),
        derive(
            Some(Kind::Message),
            quote!(
                #[message(id = 65 #comma_opt)]
                struct M(u8);
            ),
        ),
        derive(
            Some(Kind::Message),
            quote!(
                #[message(id = 5 #comma_opt)]
                struct Reserved(u8);
            ),
        ),
        derive(
            None,
            quote!(
                #[network_object(name = "ball", role = 1, calls(I) #comma_opt)]
                struct Ball;
            ),
        ),
        derive(
            None,
            quote!(
                #[network_object(role = 1, calls(I) #comma_opt)]
                struct NoName;
            ),
        ),
        fields(quote!(#opt), fields_block()),
        fields(quote!(#opt), quote!(impl Ball { #[network_field(colour)] fn f(&mut self, a: u8) {} })),
        interface(
            quote!(name = "ball", role = 0 #comma_opt),
            quote!(
                pub trait I {
                    fn g(a: u8, #[net(default)] b: u8);
                }
            ),
        ),
        interface(
            quote!(name = "ball" #comma_opt),
            quote!(
                pub trait J {
                    fn g(a: u8);
                }
            ),
        ),
    ]
}

#[test]
fn every_path_goes_through_private() {
    for output in expansions(None) {
        check_paths(&output, "magicnet");
    }
}

#[test]
fn the_crate_path_is_honoured() {
    for output in expansions(Some("mn")) {
        check_paths(&output, "mn");
    }
}

/// The items of the anonymous constants of `file`.
fn const_items(file: &syn::File) -> Vec<&Item> {
    file.items
        .iter()
        .filter_map(|it| match it {
            Item::Const(c) if c.ident == "_" => match &*c.expr {
                syn::Expr::Block(b) => Some(b.block.stmts.iter().filter_map(|s| match s {
                    syn::Stmt::Item(it) => Some(it),
                    _ => None,
                })),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn network_fields_adds_only_send_methods_and_consumes_its_attributes() {
    let file: syn::File = syn::parse2(fields(TokenStream::new(), fields_block())).unwrap();
    // the user's block, then one constant
    assert_eq!(file.items.len(), 2);
    let Item::Impl(user) = &file.items[0] else { panic!("the user's block comes first") };
    let text = quote!(#user).to_string();
    for attr in ["network_field", "net_create", "net_delete", "net ("] {
        assert!(!text.contains(attr), "`{attr}` left on the user's block: {text}");
    }
    let mut inherent = Vec::new();
    for it in const_items(&file) {
        let Item::Impl(i) = it else { continue };
        assert!(i.attrs.iter().any(|a| a.path().is_ident("automatically_derived")), "{}", quote!(#i));
        if i.trait_.is_none() {
            inherent.extend(i.items.iter().filter_map(|m| match m {
                ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
                _ => None,
            }));
        }
    }
    assert_eq!(inherent, ["send_kick", "send_mark"]);
}

#[test]
fn derives_generate_inside_an_anonymous_constant() {
    for output in [
        derive(
            Some(Kind::NetStruct),
            quote!(
                struct P(u8);
            ),
        ),
        derive(
            Some(Kind::Message),
            quote!(
                #[message(id = 65)]
                struct M(u8);
            ),
        ),
        derive(
            None,
            quote!(
                #[network_object(name = "ball", role = 1)]
                struct Ball;
            ),
        ),
    ] {
        let file: syn::File = syn::parse2(output).unwrap();
        assert_eq!(file.items.len(), 1);
        assert!(!const_items(&file).is_empty());
    }
}

#[test]
fn the_send_method_keeps_the_users_names_and_avoids_a_second_to() {
    let file: syn::File = syn::parse2(fields(
        TokenStream::new(),
        quote!(impl Bank { #[network_field] fn transfer(&mut self, from: u32, to: u32, amount: u64) {} }),
    ))
    .unwrap();
    let send = const_items(&file)
        .into_iter()
        .find_map(|it| match it {
            Item::Impl(i) if i.trait_.is_none() => i.items.first(),
            _ => None,
        })
        .expect("the send method");
    let ImplItem::Fn(f) = send else { panic!() };
    let params: Vec<String> = f
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(pt) => Some(quote!(#pt).to_string()),
            syn::FnArg::Receiver(_) => None,
        })
        .map(|p| p.split(':').next().unwrap().trim().to_owned())
        .collect();
    assert_eq!(params, ["target", "from", "to", "amount"]);
}
