//! The object messages' parameters (6-12), written and read.

use crate::error::DecodeError;
use crate::ids::{ObjectId, ObjectRole};
use crate::wire::msgpack::{self as mp, Reader};
use crate::wire::{self, NetType};

/// `[oid]`: REQUEST_DELETE_OBJECT, DESTROY_OBJECT, OBJECT_GENERATE_DONE.
pub(crate) fn oid_params(oid: ObjectId) -> Vec<u8> {
    let mut w = Vec::with_capacity(10);
    mp::write_array_len(&mut w, 1);
    mp::write_uint(&mut w, oid.0);
    w
}

/// `[oid, role, field, args]`: SET_OBJECT_FIELD.
pub(crate) fn set_field_params(oid: ObjectId, role: ObjectRole, field: u8, args: &[u8]) -> Vec<u8> {
    let mut w = Vec::with_capacity(14 + args.len());
    mp::write_array_len(&mut w, 4);
    mp::write_uint(&mut w, oid.0);
    mp::write_uint(&mut w, role.0 as u64);
    mp::write_uint(&mut w, field as u64);
    w.extend_from_slice(args);
    w
}

/// `[oid, type, owner, zone]`: GENERATE_OBJECT.
pub(crate) fn generate_params(oid: ObjectId, class: u16, owner: u32, zone: u32) -> Vec<u8> {
    let mut w = Vec::with_capacity(24);
    mp::write_array_len(&mut w, 4);
    mp::write_uint(&mut w, oid.0);
    mp::write_uint(&mut w, class as u64);
    mp::write_uint(&mut w, owner as u64);
    mp::write_uint(&mut w, zone as u64);
    w
}

/// `[counter, type, owner, zone, [[role, field, args]...]]`: CREATE_OBJECT.
pub(crate) fn create_params<'a>(
    counter: u32,
    class: u16,
    owner: u32,
    zone: u32,
    fields: impl ExactSizeIterator<Item = (ObjectRole, u8, &'a [u8])>,
) -> Vec<u8> {
    let mut w = Vec::new();
    mp::write_array_len(&mut w, 5);
    mp::write_uint(&mut w, counter as u64);
    mp::write_uint(&mut w, class as u64);
    mp::write_uint(&mut w, owner as u64);
    mp::write_uint(&mut w, zone as u64);
    mp::write_array_len(&mut w, fields.len());
    for (role, field, args) in fields {
        mp::write_array_len(&mut w, 3);
        mp::write_uint(&mut w, role.0 as u64);
        mp::write_uint(&mut w, field as u64);
        w.extend_from_slice(args);
    }
    w
}

/// Reads an argument array and returns its encoded bytes.
pub(crate) fn read_args<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    match r.peek_marker()? {
        0x90..=0x9f | 0xdc | 0xdd => r.read_raw(),
        _ => Err(DecodeError::TypeMismatch { expected: "array", found: r.peek_kind() }),
    }
}

/// A CREATE_OBJECT as it arrived.
pub(crate) struct CreateRequest<'a> {
    pub(crate) counter: u32,
    pub(crate) class: u16,
    pub(crate) owner: u32,
    pub(crate) zone: u32,
    pub(crate) fields: Vec<(ObjectRole, u8, &'a [u8])>,
}

pub(crate) fn decode_create<'a>(r: &mut Reader<'a>) -> Result<CreateRequest<'a>, DecodeError> {
    wire::expect_array(r, 5)?;
    let counter = u32::decode(r)?;
    let class = u16::decode(r)?;
    let owner = u32::decode(r)?;
    let zone = u32::decode(r)?;
    let n = r.read_array_len()?;
    r.enter()?;
    let mut fields = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        wire::expect_array(r, 3)?;
        let role = ObjectRole(u8::decode(r)?);
        let field = u8::decode(r)?;
        fields.push((role, field, read_args(r)?));
    }
    r.leave();
    r.finish()?;
    Ok(CreateRequest { counter, class, owner, zone, fields })
}

/// A SET_OBJECT_FIELD as it arrived.
pub(crate) fn decode_set_field<'a>(r: &mut Reader<'a>) -> Result<(ObjectId, ObjectRole, u8, &'a [u8]), DecodeError> {
    wire::expect_array(r, 4)?;
    let oid = u64::decode(r)?;
    let role = u8::decode(r)?;
    let field = u8::decode(r)?;
    let args = read_args(r)?;
    r.finish()?;
    Ok((ObjectId(oid), ObjectRole(role), field, args))
}

/// `[oid]` as it arrived.
pub(crate) fn decode_oid(r: &mut Reader<'_>) -> Result<ObjectId, DecodeError> {
    let (oid,) = <(u64,)>::decode(r)?;
    r.finish()?;
    Ok(ObjectId(oid))
}
