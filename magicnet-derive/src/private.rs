//! How generated code reaches the runtime and names its own bindings.
//!
//! Every path in generated code starts with `<crate>::__private`, where `<crate>` is
//! `::magicnet` or the path given with `crate = "..."`: the runtime re-exports there everything
//! the expansion needs, the standard items included, so user code cannot shadow any of them.
//! Every binding generated code introduces (parameters, locals) has mixed-site hygiene, so it
//! can never collide with, or be seen by, the user's names.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote};
use syn::Path;

use crate::attr::Once;

/// Where the `magicnet` crate is, from the `crate = "..."` option.
pub(crate) enum CratePath {
    /// Not given: `::magicnet`.
    Default,
    /// A valid path.
    Given(Path),
    /// Given but invalid (already reported): generated code has no way to reach the runtime.
    Invalid,
}

impl CratePath {
    pub(crate) fn from_option(option: Once<Path>) -> Self {
        match (option.seen(), option.value()) {
            (false, _) => Self::Default,
            (true, Some(path)) => Self::Given(path),
            (true, None) => Self::Invalid,
        }
    }

    /// The runtime's `__private` module, unless the crate path is invalid.
    pub(crate) fn private(&self) -> Option<Private> {
        match self {
            Self::Default => Some(Private(quote!(::magicnet::__private))),
            Self::Given(path) => Some(Private(quote!(#path::__private))),
            Self::Invalid => None,
        }
    }
}

/// The path `<crate>::__private`, the root of every path in generated code.
#[derive(Clone)]
pub(crate) struct Private(TokenStream);

impl ToTokens for Private {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.0.to_tokens(tokens);
    }
}

/// A binding of generated code (a parameter or a local), invisible to user code.
pub(crate) fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// A binding of generated code whose diagnostics point at `at` (user tokens).
pub(crate) fn local_at(name: &str, at: Span) -> Ident {
    Ident::new(name, Span::mixed_site().located_at(at))
}
