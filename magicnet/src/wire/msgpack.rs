//! A small, zero-copy MessagePack reader and writer.
//!
//! The writer picks the smallest form for every value exactly as the Python `msgpack`
//! package does (`use_bin_type=True`, floats as float64), so that a message encoded here is
//! byte-for-byte the message the Python MagicNet package would send. The reader accepts every
//! form, borrows strings and byte strings from the input, and is bounded: a declared length can
//! never exceed the bytes that are left, and nesting is limited, so a tiny frame cannot make it
//! allocate or recurse without bound.

use crate::error::DecodeError;

/// Default limit on how deeply arrays and maps may nest inside one decoded value.
pub const DEFAULT_MAX_DEPTH: u16 = 32;

/// Bounds applied while decoding untrusted bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Deepest nesting of arrays and maps.
    pub max_depth: u16,
    /// Most elements (or key/value pairs) in one array or map.
    pub max_len: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self { max_depth: DEFAULT_MAX_DEPTH, max_len: usize::MAX }
    }
}

/// The MessagePack family of a marker byte, used in error messages.
pub(crate) fn marker_kind(marker: u8) -> &'static str {
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => "int",
        0x80..=0x8f | 0xde | 0xdf => "map",
        0x90..=0x9f | 0xdc | 0xdd => "array",
        0xa0..=0xbf | 0xd9..=0xdb => "str",
        0xc0 => "nil",
        0xc2 | 0xc3 => "bool",
        0xc4..=0xc6 => "bin",
        0xca | 0xcb => "float",
        0xc7..=0xc9 | 0xd4..=0xd8 => "ext",
        0xc1 => "invalid marker",
    }
}

/// A cursor over MessagePack bytes.
///
/// Reading never allocates: strings and byte strings are returned as slices of the input.
/// Every method that fails leaves the reader at an unspecified position; callers that want to
/// recover rewind with [`Reader::set_position`].
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    depth_left: u16,
    max_len: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data` with the default nesting limit.
    pub fn new(data: &'a [u8]) -> Self {
        Self::with_max_depth(data, DEFAULT_MAX_DEPTH)
    }

    /// A reader over `data` that rejects values nested deeper than `max_depth`.
    pub fn with_max_depth(data: &'a [u8], max_depth: u16) -> Self {
        Self { data, pos: 0, depth_left: max_depth, max_len: usize::MAX }
    }

    /// A reader over `data` with nesting and collection-length limits.
    pub fn with_limits(data: &'a [u8], limits: ReadLimits) -> Self {
        Self { data, pos: 0, depth_left: limits.max_depth, max_len: limits.max_len }
    }

    /// The byte offset of the next value.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Moves the cursor to `pos` (clamped to the input length).
    pub fn set_position(&mut self, pos: usize) {
        self.pos = pos.min(self.data.len());
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The whole input this reader walks.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() { Ok(()) } else { Err(DecodeError::TrailingBytes) }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Incomplete);
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.data.get(self.pos).ok_or(DecodeError::Incomplete)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    fn len_u8(&mut self) -> Result<usize, DecodeError> {
        Ok(self.byte()? as usize)
    }

    #[inline]
    fn len_u16(&mut self) -> Result<usize, DecodeError> {
        Ok(u16::from_be_bytes(self.be()?) as usize)
    }

    #[inline]
    fn len_u32(&mut self) -> Result<usize, DecodeError> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    /// The marker of the next value, without consuming it.
    #[inline]
    pub fn peek_marker(&self) -> Result<u8, DecodeError> {
        self.data.get(self.pos).copied().ok_or(DecodeError::Incomplete)
    }

    /// The kind of the next value ("int", "str", ...), for error messages.
    pub fn peek_kind(&self) -> &'static str {
        self.peek_marker().map(marker_kind).unwrap_or("end of data")
    }

    #[inline]
    fn mismatch(&self, expected: &'static str) -> DecodeError {
        DecodeError::TypeMismatch { expected, found: self.peek_kind() }
    }

    /// True (and consumes it) when the next value is nil.
    #[inline]
    pub fn try_read_nil(&mut self) -> Result<bool, DecodeError> {
        if self.peek_marker()? == 0xc0 {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Reads a nil.
    pub fn read_nil(&mut self) -> Result<(), DecodeError> {
        if self.try_read_nil()? { Ok(()) } else { Err(self.mismatch("nil")) }
    }

    /// Reads a boolean.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        match self.peek_marker()? {
            0xc2 => {
                self.pos += 1;
                Ok(false)
            }
            0xc3 => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.mismatch("bool")),
        }
    }

    /// Reads any MessagePack integer form. The result covers the whole -2^63 .. 2^64-1 range.
    #[inline]
    pub fn read_int(&mut self) -> Result<i128, DecodeError> {
        let m = self.peek_marker()?;
        let v = match m {
            0x00..=0x7f => {
                self.pos += 1;
                m as i128
            }
            0xe0..=0xff => {
                self.pos += 1;
                (m as i8) as i128
            }
            0xcc => {
                self.pos += 1;
                self.byte()? as i128
            }
            0xcd => {
                self.pos += 1;
                u16::from_be_bytes(self.be()?) as i128
            }
            0xce => {
                self.pos += 1;
                u32::from_be_bytes(self.be()?) as i128
            }
            0xcf => {
                self.pos += 1;
                u64::from_be_bytes(self.be()?) as i128
            }
            0xd0 => {
                self.pos += 1;
                (self.byte()? as i8) as i128
            }
            0xd1 => {
                self.pos += 1;
                i16::from_be_bytes(self.be()?) as i128
            }
            0xd2 => {
                self.pos += 1;
                i32::from_be_bytes(self.be()?) as i128
            }
            0xd3 => {
                self.pos += 1;
                i64::from_be_bytes(self.be()?) as i128
            }
            _ => return Err(self.mismatch("int")),
        };
        Ok(v)
    }

    /// Reads an integer and checks it lies in `min..=max`.
    #[inline]
    pub fn read_int_in(&mut self, min: i128, max: i128) -> Result<i128, DecodeError> {
        let v = self.read_int()?;
        if v < min || v > max {
            return Err(DecodeError::OutOfRange { value: v, min, max });
        }
        Ok(v)
    }

    /// Reads a float (float32 or float64). Integers are accepted too and converted.
    pub fn read_f64(&mut self) -> Result<f64, DecodeError> {
        match self.peek_marker()? {
            0xca => {
                self.pos += 1;
                Ok(f32::from_be_bytes(self.be()?) as f64)
            }
            0xcb => {
                self.pos += 1;
                Ok(f64::from_be_bytes(self.be()?))
            }
            m if marker_kind(m) == "int" => Ok(self.read_int()? as f64),
            _ => Err(self.mismatch("float")),
        }
    }

    /// Reads a string, borrowed from the input.
    #[inline]
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let m = self.peek_marker()?;
        let len = match m {
            0xa0..=0xbf => {
                self.pos += 1;
                (m & 0x1f) as usize
            }
            0xd9 => {
                self.pos += 1;
                self.len_u8()?
            }
            0xda => {
                self.pos += 1;
                self.len_u16()?
            }
            0xdb => {
                self.pos += 1;
                self.len_u32()?
            }
            _ => return Err(self.mismatch("str")),
        };
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Reads a byte string, borrowed from the input.
    #[inline]
    pub fn read_bin(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = match self.peek_marker()? {
            0xc4 => {
                self.pos += 1;
                self.len_u8()?
            }
            0xc5 => {
                self.pos += 1;
                self.len_u16()?
            }
            0xc6 => {
                self.pos += 1;
                self.len_u32()?
            }
            _ => return Err(self.mismatch("bin")),
        };
        self.take(len)
    }

    /// Reads an array header. The length is checked against the bytes left (every element
    /// needs at least one byte), so it is safe to reserve that many elements.
    #[inline]
    pub fn read_array_len(&mut self) -> Result<usize, DecodeError> {
        let m = self.peek_marker()?;
        let len = match m {
            0x90..=0x9f => {
                self.pos += 1;
                (m & 0x0f) as usize
            }
            0xdc => {
                self.pos += 1;
                self.len_u16()?
            }
            0xdd => {
                self.pos += 1;
                self.len_u32()?
            }
            _ => return Err(self.mismatch("array")),
        };
        if len > self.max_len {
            return Err(DecodeError::TooLong { len, max: self.max_len });
        }
        if len > self.remaining() {
            return Err(DecodeError::Incomplete);
        }
        Ok(len)
    }

    /// Reads a map header (number of key/value pairs), checked against the bytes left.
    pub fn read_map_len(&mut self) -> Result<usize, DecodeError> {
        let m = self.peek_marker()?;
        let len = match m {
            0x80..=0x8f => {
                self.pos += 1;
                (m & 0x0f) as usize
            }
            0xde => {
                self.pos += 1;
                self.len_u16()?
            }
            0xdf => {
                self.pos += 1;
                self.len_u32()?
            }
            _ => return Err(self.mismatch("map")),
        };
        if len > self.max_len {
            return Err(DecodeError::TooLong { len, max: self.max_len });
        }
        if len.saturating_mul(2) > self.remaining() {
            return Err(DecodeError::Incomplete);
        }
        Ok(len)
    }

    /// Enters one level of nesting; pair with [`Reader::leave`].
    #[inline]
    pub fn enter(&mut self) -> Result<(), DecodeError> {
        if self.depth_left == 0 {
            return Err(DecodeError::TooDeep);
        }
        self.depth_left -= 1;
        Ok(())
    }

    /// Leaves one level of nesting.
    #[inline]
    pub fn leave(&mut self) {
        self.depth_left += 1;
    }

    /// Skips one complete value of any type.
    pub fn skip_value(&mut self) -> Result<(), DecodeError> {
        let m = self.byte()?;
        match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Ok(()),
            0x80..=0x8f => self.skip_items(2 * (m & 0x0f) as usize, true),
            0x90..=0x9f => self.skip_items((m & 0x0f) as usize, false),
            0xa0..=0xbf => self.take((m & 0x1f) as usize).map(drop),
            0xc4 | 0xd9 => {
                let n = self.len_u8()?;
                self.take(n).map(drop)
            }
            0xc5 | 0xda => {
                let n = self.len_u16()?;
                self.take(n).map(drop)
            }
            0xc6 | 0xdb => {
                let n = self.len_u32()?;
                self.take(n).map(drop)
            }
            // extension types: a type byte, then the data
            0xc7 => {
                let n = self.len_u8()?;
                self.take(1)?;
                self.take(n).map(drop)
            }
            0xc8 => {
                let n = self.len_u16()?;
                self.take(1)?;
                self.take(n).map(drop)
            }
            0xc9 => {
                let n = self.len_u32()?;
                self.take(1)?;
                self.take(n).map(drop)
            }
            0xcc | 0xd0 => self.take(1).map(drop),
            0xcd | 0xd1 => self.take(2).map(drop),
            0xca | 0xce | 0xd2 => self.take(4).map(drop),
            0xcb | 0xcf | 0xd3 => self.take(8).map(drop),
            0xd4 => self.take(2).map(drop),
            0xd5 => self.take(3).map(drop),
            0xd6 => self.take(5).map(drop),
            0xd7 => self.take(9).map(drop),
            0xd8 => self.take(17).map(drop),
            0xdc => {
                let n = self.len_u16()?;
                self.skip_items(n, false)
            }
            0xdd => {
                let n = self.len_u32()?;
                self.skip_items(n, false)
            }
            0xde => {
                let n = self.len_u16()?;
                self.skip_items(n.saturating_mul(2), true)
            }
            0xdf => {
                let n = self.len_u32()?;
                self.skip_items(n.saturating_mul(2), true)
            }
            0xc1 => Err(DecodeError::InvalidMarker(0xc1)),
        }
    }

    /// Skips `n` values: the elements of an array, or the keys and values of a map.
    fn skip_items(&mut self, n: usize, map: bool) -> Result<(), DecodeError> {
        let len = if map { n / 2 } else { n };
        if len > self.max_len {
            return Err(DecodeError::TooLong { len, max: self.max_len });
        }
        if n > self.remaining() {
            return Err(DecodeError::Incomplete);
        }

        self.enter()?;
        for _ in 0..n {
            self.skip_value()?;
        }
        self.leave();
        Ok(())
    }

    /// Skips one value and returns its encoded bytes.
    pub fn read_raw(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        self.skip_value()?;
        Ok(&self.data[start..self.pos])
    }
}

/// Writes a nil.
#[inline]
pub fn write_nil(w: &mut Vec<u8>) {
    w.push(0xc0);
}

/// Writes a boolean.
#[inline]
pub fn write_bool(w: &mut Vec<u8>, v: bool) {
    w.push(if v { 0xc3 } else { 0xc2 });
}

/// Writes an unsigned integer in its smallest form.
#[inline]
pub fn write_uint(w: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        w.push(v as u8);
    } else if v <= u8::MAX as u64 {
        w.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= u16::MAX as u64 {
        w.push(0xcd);
        w.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u32::MAX as u64 {
        w.push(0xce);
        w.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        w.push(0xcf);
        w.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes a signed integer in its smallest form (non-negative values use the unsigned forms,
/// as Python does).
#[inline]
pub fn write_sint(w: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        write_uint(w, v as u64);
    } else if v >= -32 {
        w.push(v as i8 as u8);
    } else if v >= i8::MIN as i64 {
        w.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i16::MIN as i64 {
        w.push(0xd1);
        w.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i32::MIN as i64 {
        w.push(0xd2);
        w.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        w.push(0xd3);
        w.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes an integer from the full MessagePack range; values outside -2^63..2^64-1 are
/// clamped by the caller's type and never reach here.
#[inline]
pub fn write_int(w: &mut Vec<u8>, v: i128) {
    if v >= 0 {
        write_uint(w, v as u64);
    } else {
        write_sint(w, v as i64);
    }
}

/// Writes a float64 (Python's default for floats).
#[inline]
pub fn write_f64(w: &mut Vec<u8>, v: f64) {
    w.push(0xcb);
    w.extend_from_slice(&v.to_be_bytes());
}

/// Writes a float32.
#[inline]
pub fn write_f32(w: &mut Vec<u8>, v: f32) {
    w.push(0xca);
    w.extend_from_slice(&v.to_be_bytes());
}

/// Writes a string header followed by the string.
#[inline]
pub fn write_str(w: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        w.push(0xa0 | n as u8);
    } else if n <= u8::MAX as usize {
        w.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= u16::MAX as usize {
        w.push(0xda);
        w.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        w.push(0xdb);
        w.extend_from_slice(&(n as u32).to_be_bytes());
    }
    w.extend_from_slice(s.as_bytes());
}

/// Writes a byte string.
#[inline]
pub fn write_bin(w: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n <= u8::MAX as usize {
        w.extend_from_slice(&[0xc4, n as u8]);
    } else if n <= u16::MAX as usize {
        w.push(0xc5);
        w.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        w.push(0xc6);
        w.extend_from_slice(&(n as u32).to_be_bytes());
    }
    w.extend_from_slice(b);
}

/// Writes an array header for `n` elements.
#[inline]
pub fn write_array_len(w: &mut Vec<u8>, n: usize) {
    if n < 16 {
        w.push(0x90 | n as u8);
    } else if n <= u16::MAX as usize {
        w.push(0xdc);
        w.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        w.push(0xdd);
        w.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Writes a map header for `n` key/value pairs.
#[inline]
pub fn write_map_len(w: &mut Vec<u8>, n: usize) {
    if n < 16 {
        w.push(0x80 | n as u8);
    } else if n <= u16::MAX as usize {
        w.push(0xde);
        w.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        w.push(0xdf);
        w.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_use_the_smallest_python_form() {
        let cases: &[(i128, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (300, &[0xcd, 0x01, 0x2c]),
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-200, &[0xd1, 0xff, 0x38]),
            (1 << 40, &[0xcf, 0, 0, 1, 0, 0, 0, 0, 0]),
            (u64::MAX as i128, &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            (i64::MIN as i128, &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        ];
        for &(v, bytes) in cases {
            let mut w = Vec::new();
            write_int(&mut w, v);
            assert_eq!(w, bytes, "encoding {v}");
            assert_eq!(Reader::new(bytes).read_int().unwrap(), v, "decoding {v}");
        }
    }

    #[test]
    fn every_integer_form_decodes() {
        let forms: &[(&[u8], i128)] = &[
            (&[0xd0, 0x05], 5),
            (&[0xd1, 0x00, 0x05], 5),
            (&[0xd2, 0, 0, 0, 5], 5),
            (&[0xd3, 0, 0, 0, 0, 0, 0, 0, 5], 5),
            (&[0xce, 0, 0, 0, 5], 5),
        ];
        for &(bytes, v) in forms {
            assert_eq!(Reader::new(bytes).read_int().unwrap(), v);
        }
    }

    #[test]
    fn declared_lengths_cannot_exceed_input() {
        // array32 claiming four billion elements in a 5-byte input
        let mut r = Reader::new(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.read_array_len(), Err(DecodeError::Incomplete));
        let mut r = Reader::new(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']);
        assert_eq!(r.read_str(), Err(DecodeError::Incomplete));
        let mut r = Reader::new(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.skip_value(), Err(DecodeError::Incomplete));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = vec![0x91u8; 10_000];
        let mut r = Reader::new(&deep);
        assert_eq!(r.skip_value(), Err(DecodeError::TooDeep));
    }

    #[test]
    fn skip_covers_every_marker() {
        let samples: &[&[u8]] = &[
            &[0xc0],
            &[0xc4, 2, 1, 2],
            &[0xc7, 1, 5, 0],
            &[0xd4, 1, 2],
            &[0xd8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x82, 0xa1, b'a', 1, 0xa1, b'b', 0x90],
            &[0xde, 0, 1, 1, 2],
            &[0xcb, 0, 0, 0, 0, 0, 0, 0, 0],
        ];
        for s in samples {
            let mut r = Reader::new(s);
            r.skip_value().unwrap();
            assert!(r.is_empty(), "{s:?}");
        }
        assert_eq!(Reader::new(&[0xc1]).skip_value(), Err(DecodeError::InvalidMarker(0xc1)));
    }
}
