//! Typed wire values: the [`NetType`] trait and the bounded types that mirror the Python
//! package's `network_types` (`uint16`, `int32`, `s16`, `s256`, `bs64`, ...).
//!
//! Every argument of a message or of a network-object field is a `NetType`. Encoding checks the
//! declared bounds (so sending a too-long string is an error returned to the caller) and
//! decoding checks them again (so a peer cannot smuggle one in).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};

use bytes::Bytes;

use super::msgpack::{self as mp, Reader};
use crate::error::{DecodeError, EncodeError};

/// The shape of a wire type, used for signature tables, conflict checks and the schema hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Schema {
    /// Any value (Python's `hashable`/`Any`).
    Any,
    /// A boolean.
    Bool,
    /// An integer within `min..=max`.
    Int {
        /// Smallest allowed value.
        min: i128,
        /// Largest allowed value.
        max: i128,
    },
    /// A float.
    Float,
    /// A string of at most `max_len` characters.
    Str {
        /// Maximum length in characters, if bounded.
        max_len: Option<u32>,
    },
    /// A byte string of at most `max_len` bytes.
    Bin {
        /// Maximum length in bytes, if bounded.
        max_len: Option<u32>,
    },
    /// `nil` or the inner type.
    Optional(Box<Schema>),
    /// An array of the inner type.
    List(Box<Schema>),
    /// A map.
    Map(Box<Schema>, Box<Schema>),
    /// A fixed-length array of these types (tuples, and structs encoded as arrays).
    Tuple(Vec<Schema>),
    /// A named type with its own encoding (serde structs); compared by name.
    Named(Cow<'static, str>),
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schema::Any => f.write_str("any"),
            Schema::Bool => f.write_str("bool"),
            Schema::Int { min, max } => write!(f, "int[{min},{max}]"),
            Schema::Float => f.write_str("float"),
            Schema::Str { max_len: Some(n) } => write!(f, "str[{n}]"),
            Schema::Str { max_len: None } => f.write_str("str"),
            Schema::Bin { max_len: Some(n) } => write!(f, "bin[{n}]"),
            Schema::Bin { max_len: None } => f.write_str("bin"),
            Schema::Optional(s) => write!(f, "{s}?"),
            Schema::List(s) => write!(f, "list<{s}>"),
            Schema::Map(k, v) => write!(f, "map<{k},{v}>"),
            Schema::Tuple(items) => {
                f.write_str("(")?;
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{s}")?;
                }
                f.write_str(")")
            }
            Schema::Named(n) => write!(f, "{n}"),
        }
    }
}

/// A type that travels on the wire as one MessagePack value.
///
/// Implemented for the integers (their range is their bound), `bool`, `f32`/`f64`, `String`,
/// [`Bytes`], `Vec<u8>` (as a byte string, like Python `bytes`), `Option`, `Vec`, maps, tuples,
/// the bounded types [`Str`], [`Bin`] and [`Int`], [`Value`](super::Value) and
/// [`Serde`]. Derive it for your own structs with
/// [`#[derive(NetStruct)]`](macro@crate::NetStruct).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel on the network",
    label = "not a wire type",
    note = "wire types: integers, bool, f32/f64, String/Str<N>, Vec<u8>/Bytes/Bin<N>, Int<MIN, MAX>, Option, Vec, \
            HashMap/BTreeMap, tuples, Value, #[derive(NetStruct)] structs, and Serde<T> for serde types"
)]
pub trait NetType: Sized {
    /// Appends the MessagePack encoding of `self`, checking its declared bounds.
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// Decodes and validates one value.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The wire shape of this type.
    fn schema() -> Schema;

    /// Encodes a list of `Self`. Overridden by `u8` so that `Vec<u8>` is a byte string.
    #[doc(hidden)]
    fn encode_list(items: &[Self], w: &mut Vec<u8>) -> Result<(), EncodeError> {
        if items.len() > u32::MAX as usize {
            return Err(EncodeError::TooManyItems(items.len()));
        }
        mp::write_array_len(w, items.len());
        for it in items {
            it.encode(w)?;
        }
        Ok(())
    }

    /// Decodes a list of `Self`. Overridden by `u8` to accept a byte string.
    #[doc(hidden)]
    fn decode_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let n = r.read_array_len()?;
        r.enter()?;
        // `n` is bounded by the bytes left; reserve little up front so nested headers cannot
        // make every level reserve the whole remainder.
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(Self::decode(r)?);
        }
        r.leave();
        Ok(out)
    }

    /// Schema of a list of `Self`.
    #[doc(hidden)]
    fn list_schema() -> Schema {
        Schema::List(Box::new(Self::schema()))
    }
}

/// Encodes one value into a fresh buffer.
pub fn to_vec<T: NetType>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut w = Vec::new();
    value.encode(&mut w)?;
    Ok(w)
}

/// Decodes exactly one value from `bytes` (no trailing bytes allowed).
pub fn from_slice<T: NetType>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = T::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

macro_rules! int_impl {
    ($($t:ty),*) => {$(
        impl NetType for $t {
            #[inline]
            fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
                mp::write_int(w, *self as i128);
                Ok(())
            }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(r.read_int_in(<$t>::MIN as i128, <$t>::MAX as i128)? as $t)
            }
            fn schema() -> Schema {
                Schema::Int { min: <$t>::MIN as i128, max: <$t>::MAX as i128 }
            }
        }
    )*};
}
int_impl!(i8, i16, i32, i64, u16, u32, u64);

impl NetType for u8 {
    #[inline]
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        mp::write_uint(w, *self as u64);
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_int_in(0, 255)? as u8)
    }
    fn schema() -> Schema {
        Schema::Int { min: 0, max: 255 }
    }
    fn encode_list(items: &[Self], w: &mut Vec<u8>) -> Result<(), EncodeError> {
        if items.len() > u32::MAX as usize {
            return Err(EncodeError::TooManyItems(items.len()));
        }
        mp::write_bin(w, items);
        Ok(())
    }
    fn decode_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        if r.peek_kind() == "bin" {
            return Ok(r.read_bin()?.to_vec());
        }
        // An array of small integers is accepted too (the JSON encoding carries bytes so).
        let n = r.read_array_len()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(Self::decode(r)?);
        }
        Ok(out)
    }
    fn list_schema() -> Schema {
        Schema::Bin { max_len: None }
    }
}

impl NetType for usize {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        mp::write_uint(w, *self as u64);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_int_in(0, usize::MAX as i128)? as usize)
    }
    fn schema() -> Schema {
        Schema::Int { min: 0, max: usize::MAX as i128 }
    }
}

impl NetType for bool {
    #[inline]
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        mp::write_bool(w, *self);
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    fn schema() -> Schema {
        Schema::Bool
    }
}

impl NetType for f64 {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        mp::write_f64(w, *self);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_f64()
    }
    fn schema() -> Schema {
        Schema::Float
    }
}

impl NetType for f32 {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        mp::write_f32(w, *self);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_f64()? as f32)
    }
    fn schema() -> Schema {
        Schema::Float
    }
}

impl NetType for String {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        mp::write_str(w, self);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_str()?.to_owned())
    }
    fn schema() -> Schema {
        Schema::Str { max_len: None }
    }
}

impl NetType for Bytes {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        mp::write_bin(w, self);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Bytes::from(u8::decode_list(r)?))
    }
    fn schema() -> Schema {
        Schema::Bin { max_len: None }
    }
}

impl<T: NetType> NetType for Option<T> {
    #[inline]
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Some(v) => v.encode(w),
            None => {
                mp::write_nil(w);
                Ok(())
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.try_read_nil()? { Ok(None) } else { T::decode(r).map(Some) }
    }
    fn schema() -> Schema {
        Schema::Optional(Box::new(T::schema()))
    }
}

impl<T: NetType> NetType for Vec<T> {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        T::encode_list(self, w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode_list(r)
    }
    fn schema() -> Schema {
        T::list_schema()
    }
}

impl<T: NetType> NetType for Box<T> {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        (**self).encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode(r).map(Box::new)
    }
    fn schema() -> Schema {
        T::schema()
    }
}

fn encode_map<'a, K: NetType + 'a, V: NetType + 'a>(
    len: usize,
    items: impl Iterator<Item = (&'a K, &'a V)>,
    w: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if len > u32::MAX as usize {
        return Err(EncodeError::TooManyItems(len));
    }
    mp::write_map_len(w, len);
    for (k, v) in items {
        k.encode(w)?;
        v.encode(w)?;
    }
    Ok(())
}

impl<K: NetType + Eq + Hash, V: NetType> NetType for HashMap<K, V> {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_map(self.len(), self.iter(), w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.read_map_len()?;
        r.enter()?;
        let mut out = HashMap::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = K::decode(r)?;
            let v = V::decode(r)?;
            out.insert(k, v);
        }
        r.leave();
        Ok(out)
    }
    fn schema() -> Schema {
        Schema::Map(Box::new(K::schema()), Box::new(V::schema()))
    }
}

impl<K: NetType + Ord, V: NetType> NetType for BTreeMap<K, V> {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_map(self.len(), self.iter(), w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.read_map_len()?;
        r.enter()?;
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let k = K::decode(r)?;
            let v = V::decode(r)?;
            out.insert(k, v);
        }
        r.leave();
        Ok(out)
    }
    fn schema() -> Schema {
        Schema::Map(Box::new(K::schema()), Box::new(V::schema()))
    }
}

/// Reads an array header and checks it has exactly `n` elements.
#[doc(hidden)]
#[inline]
pub fn expect_array(r: &mut Reader<'_>, n: usize) -> Result<(), DecodeError> {
    let len = r.read_array_len()?;
    if len != n {
        return Err(DecodeError::ArgumentCount { min: n as u16, max: n as u16, found: len });
    }
    Ok(())
}

macro_rules! tuple_impl {
    ($n:expr; $($name:ident $idx:tt),*) => {
        impl<$($name: NetType),*> NetType for ($($name,)*) {
            #[inline]
            fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
                mp::write_array_len(w, $n);
                $( self.$idx.encode(w)?; )*
                Ok(())
            }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                expect_array(r, $n)?;
                r.enter()?;
                let v = ($($name::decode(r)?,)*);
                r.leave();
                Ok(v)
            }
            fn schema() -> Schema {
                Schema::Tuple(vec![$($name::schema()),*])
            }
        }
    };
}
impl NetType for () {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        mp::write_array_len(w, 0);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_array(r, 0)
    }
    fn schema() -> Schema {
        Schema::Tuple(Vec::new())
    }
}
tuple_impl!(1; A 0);
tuple_impl!(2; A 0, B 1);
tuple_impl!(3; A 0, B 1, C 2);
tuple_impl!(4; A 0, B 1, C 2, D 3);
tuple_impl!(5; A 0, B 1, C 2, D 3, E 4);
tuple_impl!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_impl!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_impl!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_impl!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_impl!(10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_impl!(11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_impl!(12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// Counts characters the way Python's `len(str)` does (code points), cheaply.
#[inline]
fn char_len(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.chars().count() }
}

/// A string of at most `N` characters (Python's `s16`, `s64`, `s256`, `s4096`).
///
/// Construct it freely from `&str` or `String`; the bound is checked when the value is sent
/// (an error returned to the caller) and when it is received (the message is dropped).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str<const N: usize>(pub String);

impl<const N: usize> Str<N> {
    /// Wraps a string.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The string.
    pub fn into_inner(self) -> String {
        self.0
    }
    /// The string as `&str`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> Deref for Str<N> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> From<&str> for Str<N> {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl<const N: usize> From<String> for Str<N> {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl<const N: usize> From<Str<N>> for String {
    fn from(s: Str<N>) -> Self {
        s.0
    }
}

impl<const N: usize> PartialEq<str> for Str<N> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&str> for Str<N> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<const N: usize> fmt::Debug for Str<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const N: usize> fmt::Display for Str<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> NetType for Str<N> {
    #[inline]
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        let len = char_len(&self.0);
        if len > N {
            return Err(EncodeError::TooLong { len, max: N });
        }
        mp::write_str(w, &self.0);
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let s = r.read_str()?;
        // A string of more than 4*N bytes cannot have N characters or fewer.
        if s.len() > N {
            let len = if s.len() > 4 * N { s.len() } else { char_len(s) };
            if len > N {
                return Err(DecodeError::TooLong { len, max: N });
            }
        }
        Ok(Self(s.to_owned()))
    }
    fn schema() -> Schema {
        Schema::Str { max_len: Some(N as u32) }
    }
}

/// A byte string of at most `N` bytes (Python's `bs16`, `bs64`, `bs256`, `bs4096`).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bin<const N: usize>(pub Vec<u8>);

impl<const N: usize> Bin<N> {
    /// Wraps bytes.
    pub fn new(b: impl Into<Vec<u8>>) -> Self {
        Self(b.into())
    }
    /// The bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl<const N: usize> Deref for Bin<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> From<&[u8]> for Bin<N> {
    fn from(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

impl<const N: usize> From<Vec<u8>> for Bin<N> {
    fn from(b: Vec<u8>) -> Self {
        Self(b)
    }
}

impl<const N: usize> fmt::Debug for Bin<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bin(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl<const N: usize> NetType for Bin<N> {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.0.len() > N {
            return Err(EncodeError::TooLong { len: self.0.len(), max: N });
        }
        mp::write_bin(w, &self.0);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = u8::decode_list(r)?;
        if v.len() > N {
            return Err(DecodeError::TooLong { len: v.len(), max: N });
        }
        Ok(Self(v))
    }
    fn schema() -> Schema {
        Schema::Bin { max_len: Some(N as u32) }
    }
}

/// An integer restricted to `MIN..=MAX` (Python's `Annotated[int, Ge(MIN), Lt(MAX + 1)]`).
///
/// For the standard widths use the native types (`i32` is Python's `int32`, `u16` is
/// `uint16`...): their range is their bound.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Int<const MIN: i64, const MAX: i64>(pub i64);

impl<const MIN: i64, const MAX: i64> Int<MIN, MAX> {
    /// The value, checked against the bounds.
    pub fn new(v: i64) -> Result<Self, EncodeError> {
        if v < MIN || v > MAX {
            return Err(EncodeError::OutOfRange { value: v as i128, min: MIN as i128, max: MAX as i128 });
        }
        Ok(Self(v))
    }
    /// The value.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl<const MIN: i64, const MAX: i64> From<i64> for Int<MIN, MAX> {
    fn from(v: i64) -> Self {
        Self(v)
    }
}

impl<const MIN: i64, const MAX: i64> Deref for Int<MIN, MAX> {
    type Target = i64;
    fn deref(&self) -> &i64 {
        &self.0
    }
}

impl<const MIN: i64, const MAX: i64> DerefMut for Int<MIN, MAX> {
    fn deref_mut(&mut self) -> &mut i64 {
        &mut self.0
    }
}

impl<const MIN: i64, const MAX: i64> fmt::Debug for Int<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MIN: i64, const MAX: i64> fmt::Display for Int<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<const MIN: i64, const MAX: i64> NetType for Int<MIN, MAX> {
    #[inline]
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        Self::new(self.0)?;
        mp::write_sint(w, self.0);
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(r.read_int_in(MIN as i128, MAX as i128)? as i64))
    }
    fn schema() -> Schema {
        Schema::Int { min: MIN as i128, max: MAX as i128 }
    }
}

/// Any serde type, carried with rmp-serde: structs travel as arrays of their fields (the way
/// Python sends dataclasses), and both arrays and maps decode.
///
/// ```
/// use magicnet::wire::{Serde, NetType, to_vec, from_slice};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Position { x: f64, y: f64 }
///
/// let bytes = to_vec(&Serde(Position { x: 1.0, y: 2.0 })).unwrap();
/// assert_eq!(bytes[0], 0x92); // a two-element array
/// let back: Serde<Position> = from_slice(&bytes).unwrap();
/// assert_eq!(back.0, Position { x: 1.0, y: 2.0 });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serde<T>(pub T);

impl<T> Deref for Serde<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Serde<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> NetType for Serde<T> {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        rmp_serde::encode::write(w, &self.0).map_err(|e| EncodeError::Serde(e.to_string()))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // Bound the value with our own (depth-limited) walker before rmp-serde sees it.
        let raw = r.read_raw()?;
        rmp_serde::from_slice(raw).map(Serde).map_err(|e| {
            tracing::debug!(error = %e, "serde value rejected");
            DecodeError::Invalid("value does not match the serde type")
        })
    }
    fn schema() -> Schema {
        Schema::Named(Cow::Borrowed(std::any::type_name::<T>()))
    }
}

/// Python's `s16`: a string of at most 16 characters.
pub type S16 = Str<16>;
/// Python's `s64`: a string of at most 64 characters.
pub type S64 = Str<64>;
/// Python's `s256`: a string of at most 256 characters.
pub type S256 = Str<256>;
/// Python's `s4096`: a string of at most 4096 characters.
pub type S4096 = Str<4096>;
/// Python's `bs16`: at most 16 bytes.
pub type Bs16 = Bin<16>;
/// Python's `bs64`: at most 64 bytes.
pub type Bs64 = Bin<64>;
/// Python's `bs256`: at most 256 bytes.
pub type Bs256 = Bin<256>;
/// Python's `bs4096`: at most 4096 bytes.
pub type Bs4096 = Bin<4096>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_strings_count_characters_like_python() {
        let ok: Str<4> = "héllo"[..5].into(); // "héll": 4 chars, 5 bytes
        assert_eq!(char_len(&ok), 4);
        let bytes = to_vec(&ok).unwrap();
        assert_eq!(from_slice::<Str<4>>(&bytes).unwrap(), ok);
        let long = Str::<4>::from("héllo");
        assert_eq!(to_vec(&long), Err(EncodeError::TooLong { len: 5, max: 4 }));
        let mut w = Vec::new();
        mp::write_str(&mut w, "héllo");
        assert_eq!(from_slice::<Str<4>>(&w), Err(DecodeError::TooLong { len: 5, max: 4 }));
    }

    #[test]
    fn native_ints_check_their_range() {
        let bytes = to_vec(&100_000i64).unwrap();
        assert_eq!(from_slice::<u16>(&bytes), Err(DecodeError::OutOfRange { value: 100_000, min: 0, max: 65535 }));
        assert_eq!(from_slice::<i32>(&bytes), Ok(100_000));
    }

    #[test]
    fn vec_u8_is_a_byte_string() {
        let bytes = to_vec(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(bytes, [0xc4, 3, 1, 2, 3]);
        assert_eq!(from_slice::<Vec<u8>>(&bytes).unwrap(), vec![1, 2, 3]);
        // arrays of small ints are accepted as bytes
        assert_eq!(from_slice::<Vec<u8>>(&[0x92, 1, 2]).unwrap(), vec![1, 2]);
        assert_eq!(Vec::<u8>::schema(), Schema::Bin { max_len: None });
    }

    #[test]
    fn tuples_require_exact_arity() {
        let bytes = to_vec(&(1u8, 2u8, 3u8)).unwrap();
        assert!(matches!(from_slice::<(u8, u8)>(&bytes), Err(DecodeError::ArgumentCount { .. })));
    }

    #[test]
    fn ranged_int_bounds() {
        assert!(Int::<0, 10>::new(11).is_err());
        let v: Int<-5, 5> = Int(5);
        let b = to_vec(&v).unwrap();
        assert_eq!(from_slice::<Int<-5, 5>>(&b).unwrap().get(), 5);
        assert!(from_slice::<Int<-5, 4>>(&b).is_err());
        assert!(to_vec(&Int::<0, 1>(7)).is_err());
    }

    #[test]
    fn serde_structs_decode_from_arrays_and_maps() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct P {
            a: i32,
            b: String,
        }
        let arr = to_vec(&Serde(P { a: 1, b: "x".into() })).unwrap();
        assert_eq!(arr, [0x92, 0x01, 0xa1, b'x']);
        let map = rmp_serde::to_vec_named(&P { a: 1, b: "x".into() }).unwrap();
        assert_eq!(from_slice::<Serde<P>>(&map).unwrap().0, P { a: 1, b: "x".into() });
        assert!(from_slice::<Serde<P>>(&[0x92, 0xa1, b'x', 0x01]).is_err());
    }
}
