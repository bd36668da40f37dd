//! The model of a wire struct (or message), parsed from the type and its attributes.

use proc_macro2::Span;
use syn::{Data, DeriveInput, Fields, Member, Type};

use super::attr::{self, ContainerAttrs, Kind};
use crate::ctxt::Ctxt;
use crate::private::Private;

/// A wire struct.
pub(crate) struct Container<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) shape: Shape,
    /// The fields, in order (none for an enum or union).
    pub(crate) fields: Vec<Field<'a>>,
    pub(crate) attrs: ContainerAttrs,
}

/// The kind of type.
pub(crate) enum Shape {
    /// `struct S { a: A }`.
    Named,
    /// `struct S(A);`.
    Tuple,
    /// `struct S;`.
    Unit,
    /// An enum (an error), at its `enum` token.
    Enum(Span),
    /// A union (an error), at its `union` token.
    Union(Span),
}

/// A field.
pub(crate) struct Field<'a> {
    pub(crate) original: &'a syn::Field,
    pub(crate) member: Member,
    pub(crate) ty: &'a Type,
    /// `#[net(default)]`: may be missing on the wire, then `Default::default()`.
    pub(crate) default: bool,
}

impl<'a> Container<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, input: &'a DeriveInput, kind: Kind) -> Self {
        let attrs = attr::container(cx, input, kind);
        let (shape, fields) = match &input.data {
            Data::Struct(s) => {
                let shape = match &s.fields {
                    Fields::Named(_) => Shape::Named,
                    Fields::Unnamed(_) => Shape::Tuple,
                    Fields::Unit => Shape::Unit,
                };
                let fields = s
                    .fields
                    .iter()
                    .zip(s.fields.members())
                    .map(|(f, member)| Field { original: f, member, ty: &f.ty, default: attr::field(cx, f) })
                    .collect();
                (shape, fields)
            }
            Data::Enum(e) => (Shape::Enum(e.enum_token.span), Vec::new()),
            Data::Union(u) => (Shape::Union(u.union_token.span), Vec::new()),
        };
        Container { input, shape, fields, attrs }
    }

    /// The path of generated code (valid once the container is checked).
    pub(crate) fn private(&self) -> Private {
        self.attrs.krate.private().expect("an invalid crate path is reported")
    }
}
