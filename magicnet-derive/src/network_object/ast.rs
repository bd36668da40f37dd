//! The model of a network object type, parsed from its `#[network_object(...)]` attributes.

use syn::DeriveInput;

use crate::attr;
use crate::class::{ClassAttrs, ClassParser};
use crate::ctxt::Ctxt;
use crate::private::Private;

/// A `#[derive(NetworkObject)]` type.
pub(crate) struct Object<'a> {
    pub(crate) input: &'a DeriveInput,
    /// A `#[network_object(...)]` attribute was given.
    pub(crate) found: bool,
    pub(crate) class: ClassAttrs,
}

impl<'a> Object<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let mut parser = ClassParser::new(true);
        let expected = parser.expected();
        let mut found = false;
        for a in input.attrs.iter().filter(|a| a.path().is_ident("network_object")) {
            found = true;
            attr::parse_attr(cx, a, "`#[network_object]` option", expected, &mut |meta| parser.option(cx, meta));
        }
        Object { input, found, class: parser.finish() }
    }

    /// The path of generated code (valid once the object is checked).
    pub(crate) fn private(&self) -> Private {
        self.class.krate.private().expect("an invalid crate path is reported")
    }
}
