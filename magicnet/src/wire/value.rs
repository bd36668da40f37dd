//! A dynamically typed wire value, for parameters whose type is not known in advance
//! (shared parameters, Python's `hashable`, message middlewares that inspect anything).

use std::fmt;

use super::msgpack::{self as mp, Reader};
use super::types::{NetType, Schema};
use crate::error::{DecodeError, EncodeError};

/// Any value MagicNet can carry.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `nil` (Python `None`).
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer in -2^63 ..= 2^64-1.
    Int(i128),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A byte string.
    Bin(Vec<u8>),
    /// An array (Python list or tuple).
    Array(Vec<Value>),
    /// A map, in wire order.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The bytes, if this is a byte string.
    pub fn as_bin(&self) -> Option<&[u8]> {
        match self {
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }
    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// True for `nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Converts to a typed value by re-decoding (checks every bound of `T`).
    pub fn to_typed<T: NetType>(&self) -> Result<T, DecodeError> {
        let mut w = Vec::new();
        self.encode(&mut w).map_err(|_| DecodeError::Invalid("value out of MessagePack range"))?;
        super::from_slice(&w)
    }
}

impl NetType for Value {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Value::Nil => mp::write_nil(w),
            Value::Bool(b) => mp::write_bool(w, *b),
            Value::Int(i) => {
                if *i < i64::MIN as i128 || *i > u64::MAX as i128 {
                    return Err(EncodeError::OutOfRange { value: *i, min: i64::MIN as i128, max: u64::MAX as i128 });
                }
                mp::write_int(w, *i)
            }
            Value::Float(f) => mp::write_f64(w, *f),
            Value::Str(s) => mp::write_str(w, s),
            Value::Bin(b) => mp::write_bin(w, b),
            Value::Array(a) => {
                mp::write_array_len(w, a.len());
                for v in a {
                    v.encode(w)?;
                }
            }
            Value::Map(m) => {
                mp::write_map_len(w, m.len());
                for (k, v) in m {
                    k.encode(w)?;
                    v.encode(w)?;
                }
            }
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let m = r.peek_marker()?;
        Ok(match mp::marker_kind(m) {
            "nil" => {
                r.read_nil()?;
                Value::Nil
            }
            "bool" => Value::Bool(r.read_bool()?),
            "int" => Value::Int(r.read_int()?),
            "float" => Value::Float(r.read_f64()?),
            "str" => Value::Str(r.read_str()?.to_owned()),
            "bin" => Value::Bin(r.read_bin()?.to_vec()),
            "array" => {
                let n = r.read_array_len()?;
                r.enter()?;
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    v.push(Value::decode(r)?);
                }
                r.leave();
                Value::Array(v)
            }
            "map" => {
                let n = r.read_map_len()?;
                r.enter()?;
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let k = Value::decode(r)?;
                    let val = Value::decode(r)?;
                    v.push((k, val));
                }
                r.leave();
                Value::Map(v)
            }
            "ext" => return Err(DecodeError::Unsupported("MessagePack extension types")),
            _ => return Err(DecodeError::InvalidMarker(m)),
        })
    }

    fn schema() -> Schema {
        Schema::Any
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bin(b) => {
                f.write_str("b'")?;
                for byte in b {
                    write!(f, "\\x{byte:02x}")?;
                }
                f.write_str("'")
            }
            Value::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(v as i128) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, u64, usize);

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bin(v.to_vec())
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Nil, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_slice, to_vec};

    #[test]
    fn round_trips_python_sample() {
        // msgpack.packb([1,[300,-5,-200,2**40,1.5,'abc',b'xy',None,True,{'a':1},[1,2]]])
        let py = "92019bcd012cfbd1ff38cf0000010000000000cb3ff8000000000000a3616263c4027879c0c381a16101920102";
        let bytes: Vec<u8> = (0..py.len()).step_by(2).map(|i| u8::from_str_radix(&py[i..i + 2], 16).unwrap()).collect();
        let v: Value = from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            Value::Array(vec![
                1.into(),
                Value::Array(vec![
                    300.into(),
                    (-5).into(),
                    (-200).into(),
                    (1u64 << 40).into(),
                    1.5.into(),
                    "abc".into(),
                    Value::Bin(b"xy".to_vec()),
                    Value::Nil,
                    true.into(),
                    Value::Map(vec![("a".into(), 1.into())]),
                    Value::Array(vec![1.into(), 2.into()]),
                ])
            ])
        );
        assert_eq!(to_vec(&v).unwrap(), bytes, "re-encoding must be byte-identical to Python");
    }

    #[test]
    fn to_typed_checks_bounds() {
        let v = Value::Array(vec![1.into(), 2.into()]);
        assert_eq!(v.to_typed::<Vec<u8>>().unwrap(), vec![1, 2]);
        assert!(Value::from(300).to_typed::<u8>().is_err());
    }
}
