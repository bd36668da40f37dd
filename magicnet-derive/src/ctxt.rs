//! Error collection: every problem is recorded with its span and reported at once.

use std::cell::RefCell;

#[derive(Default)]
pub(crate) struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub(crate) fn error(&self, span: impl quote::ToTokens, msg: impl std::fmt::Display) {
        self.errors.borrow_mut().push(syn::Error::new_spanned(span, msg));
    }

    pub(crate) fn push(&self, e: syn::Error) {
        self.errors.borrow_mut().push(e);
    }

    /// All errors combined into one, if any.
    pub(crate) fn check(self) -> syn::Result<()> {
        let mut errors = self.errors.into_inner().into_iter();
        let Some(mut first) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            first.combine(e);
        }
        Err(first)
    }
}
