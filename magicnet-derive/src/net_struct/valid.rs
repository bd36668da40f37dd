//! The rules of a wire struct and of a message.

use super::ast::{Container, Shape};
use crate::ctxt::Ctxt;

pub(crate) fn check(cx: &Ctxt, c: &Container<'_>) {
    match c.shape {
        Shape::Enum(span) => cx.error_at(span, "wire structs must be structs: enums have no MessagePack array form"),
        Shape::Union(span) => cx.error_at(span, "wire structs must be structs, not unions"),
        Shape::Named | Shape::Tuple | Shape::Unit => {}
    }
    // `default` fields must be trailing: the wire omits only a suffix.
    let mut seen_default = false;
    for f in &c.fields {
        if f.default {
            seen_default = true;
        } else if seen_default {
            cx.error(
                f.original,
                "fields after a `#[net(default)]` field must be `#[net(default)]` too: only trailing arguments may be omitted",
            );
        }
    }
    if c.fields.len() > u16::MAX as usize {
        cx.error(&c.input.ident, "too many fields: a wire struct has at most 65535");
    }
    if let Some(m) = &c.attrs.message {
        match &m.id {
            None => cx.error(&c.input.ident, "missing `#[message(id = N)]`: every message needs an id of 64 or more"),
            Some(lit) => match lit.base10_parse::<u64>() {
                Ok(v) if v < 64 => cx.error(
                    lit,
                    format!("message id {v} is reserved for the protocol (0-63); application messages use 64 and up"),
                ),
                Ok(_) => {}
                Err(e) => cx.push(e),
            },
        }
    }
}
