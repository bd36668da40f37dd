//! The JSON encoding: one JSON array of `[type, params]` pairs per payload, formatted exactly
//! as Python's `json.dumps` formats it (`", "` and `": "` separators, `ensure_ascii`), so a
//! payload is byte-for-byte what the Python `JsonEncoder` produces.
//!
//! JSON has no byte strings (the Python `JsonEncoder` cannot send them at all); here they
//! travel as arrays of integers, which the typed decoders accept for byte strings.

use bytes::Bytes;

use super::msgpack::{self as mp, Reader};
use super::{PayloadItem, RawMessage};
use crate::error::{DecodeError, EncodeError};

/// Decodes a JSON payload into messages whose parameters are transcoded to MessagePack.
///
/// Accepts what Python's `json` writes, including `NaN`, `Infinity` and `-Infinity`.
pub fn decode_payload(payload: &[u8]) -> Result<Vec<PayloadItem>, DecodeError> {
    let mut p = Parser { s: payload, pos: 0, depth: 0 };
    p.ws();
    if p.peek() != Some(b'[') {
        return Err(DecodeError::Invalid("a JSON payload must be an array of messages"));
    }
    p.pos += 1;
    let mut out = Vec::new();
    p.ws();
    if p.peek() == Some(b']') {
        p.pos += 1;
    } else {
        loop {
            // Each message is transcoded whole, then its shape is checked.
            let mut w = Vec::new();
            p.value(&mut w)?;
            out.push(shape(Bytes::from(w)));
            p.ws();
            match p.next() {
                Some(b',') => p.ws(),
                Some(b']') => break,
                _ => return Err(DecodeError::Invalid("expected `,` or `]` in the JSON payload")),
            }
        }
    }
    p.ws();
    if p.pos != payload.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(out)
}

/// Checks a transcoded message is `[uint, array]`.
fn shape(msg: Bytes) -> PayloadItem {
    let mut r = Reader::new(&msg);
    if r.read_array_len() != Ok(2) {
        return PayloadItem::BadShape("a message must be the array [type, parameters]");
    }
    let Ok(kind) = r.read_int() else {
        return PayloadItem::BadShape("the message type must be a non-negative integer");
    };
    let Ok(kind) = u64::try_from(kind) else {
        return PayloadItem::BadShape("the message type must be a non-negative integer");
    };
    let start = r.position();
    match r.peek_marker() {
        Ok(0x90..=0x9f | 0xdc | 0xdd) => {}
        _ => return PayloadItem::BadShape("the message parameters must be an array"),
    }
    PayloadItem::Message(RawMessage { kind, params: msg.slice(start..) })
}

/// A small, strict JSON reader that writes MessagePack as it goes.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: u16,
}

const MAX_JSON_DEPTH: u16 = 64;

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, w: &mut Vec<u8>) -> Result<(), DecodeError> {
        self.ws();
        let bad = DecodeError::Invalid("payload is not valid JSON");
        match self.peek().ok_or(DecodeError::Incomplete)? {
            b'n' if self.eat(b"null") => mp::write_nil(w),
            b't' if self.eat(b"true") => mp::write_bool(w, true),
            b'f' if self.eat(b"false") => mp::write_bool(w, false),
            b'N' if self.eat(b"NaN") => mp::write_f64(w, f64::NAN),
            b'I' if self.eat(b"Infinity") => mp::write_f64(w, f64::INFINITY),
            b'-' if self.eat(b"-Infinity") => mp::write_f64(w, f64::NEG_INFINITY),
            b'"' => {
                let s = self.string()?;
                mp::write_str(w, &s);
            }
            b'[' | b'{' => {
                self.depth += 1;
                if self.depth > MAX_JSON_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                let object = self.next() == Some(b'{');
                let close = if object { b'}' } else { b']' };
                // Items go to their own buffer; the header is written once they are counted.
                let mut items = Vec::new();
                let mut n = 0usize;
                self.ws();
                if self.peek() == Some(close) {
                    self.pos += 1;
                } else {
                    loop {
                        if object {
                            self.ws();
                            if self.peek() != Some(b'"') {
                                return Err(DecodeError::Unsupported("JSON object keys must be strings"));
                            }
                            let k = self.string()?;
                            mp::write_str(&mut items, &k);
                            self.ws();
                            if self.next() != Some(b':') {
                                return Err(bad);
                            }
                        }
                        self.value(&mut items)?;
                        n += 1;
                        self.ws();
                        match self.next() {
                            Some(b',') => {}
                            Some(c) if c == close => break,
                            _ => return Err(bad),
                        }
                    }
                }
                if object {
                    mp::write_map_len(w, n);
                } else {
                    mp::write_array_len(w, n);
                }
                w.extend_from_slice(&items);
                self.depth -= 1;
            }
            b'-' | b'0'..=b'9' => self.number(w)?,
            _ => return Err(bad),
        }
        Ok(())
    }

    fn number(&mut self, w: &mut Vec<u8>) -> Result<(), DecodeError> {
        let start = self.pos;
        let mut float = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => float = true,
                _ => break,
            }
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| DecodeError::InvalidUtf8)?;
        if !float {
            if let Ok(u) = text.parse::<u64>() {
                mp::write_uint(w, u);
                return Ok(());
            }
            if let Ok(i) = text.parse::<i64>() {
                mp::write_sint(w, i);
                return Ok(());
            }
        }
        // Integers beyond 64 bits have no MessagePack form; as floats they keep their size.
        let f: f64 = text.parse().map_err(|_| DecodeError::Invalid("invalid JSON number"))?;
        mp::write_f64(w, f);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, DecodeError> {
        let bad = DecodeError::Invalid("invalid \\u escape in a JSON string");
        let h = self.s.get(self.pos..self.pos + 4).ok_or(DecodeError::Incomplete)?;
        self.pos += 4;
        let h = std::str::from_utf8(h).map_err(|_| bad)?;
        u32::from_str_radix(h, 16).map_err(|_| bad)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.next().ok_or(DecodeError::Incomplete)? {
                b'"' => break,
                b'\\' => match self.next().ok_or(DecodeError::Incomplete)? {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let hi = self.hex4()?;
                        let c = if (0xd800..0xdc00).contains(&hi) && self.eat(b"\\u") {
                            let lo = self.hex4()?;
                            char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff))
                        } else {
                            char::from_u32(hi)
                        };
                        // Python may write lone surrogates; keep the text valid UTF-8.
                        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return Err(DecodeError::Invalid("invalid escape in a JSON string")),
                },
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| DecodeError::InvalidUtf8)
    }
}

/// Appends `[kind, params]` as JSON, `params` being the MessagePack parameter array.
pub fn write_message(kind: u64, params: &[u8], w: &mut Vec<u8>) -> Result<(), EncodeError> {
    w.push(b'[');
    w.extend_from_slice(kind.to_string().as_bytes());
    w.extend_from_slice(b", ");
    let mut r = Reader::new(params);
    write_value(&mut r, w, false)?;
    w.push(b']');
    Ok(())
}

fn bad(_: DecodeError) -> EncodeError {
    EncodeError::Unsupported("parameters are not valid MessagePack")
}

fn write_value(r: &mut Reader<'_>, w: &mut Vec<u8>, as_key: bool) -> Result<(), EncodeError> {
    let kind = mp::marker_kind(r.peek_marker().map_err(bad)?);
    if as_key && !matches!(kind, "str" | "int") {
        return Err(EncodeError::Unsupported("JSON map keys must be strings or integers"));
    }
    match kind {
        "nil" => {
            r.read_nil().map_err(bad)?;
            w.extend_from_slice(b"null");
        }
        "bool" => w.extend_from_slice(if r.read_bool().map_err(bad)? { b"true" } else { b"false" }),
        "int" => {
            let i = r.read_int().map_err(bad)?;
            if as_key {
                w.push(b'"');
            }
            w.extend_from_slice(i.to_string().as_bytes());
            if as_key {
                w.push(b'"');
            }
        }
        "float" => write_float(r.read_f64().map_err(bad)?, w),
        "str" => write_string(r.read_str().map_err(bad)?, w),
        "bin" => {
            let b = r.read_bin().map_err(bad)?;
            w.push(b'[');
            for (i, byte) in b.iter().enumerate() {
                if i > 0 {
                    w.extend_from_slice(b", ");
                }
                w.extend_from_slice(byte.to_string().as_bytes());
            }
            w.push(b']');
        }
        "array" => {
            let n = r.read_array_len().map_err(bad)?;
            r.enter().map_err(bad)?;
            w.push(b'[');
            for i in 0..n {
                if i > 0 {
                    w.extend_from_slice(b", ");
                }
                write_value(r, w, false)?;
            }
            w.push(b']');
            r.leave();
        }
        "map" => {
            let n = r.read_map_len().map_err(bad)?;
            r.enter().map_err(bad)?;
            w.push(b'{');
            for i in 0..n {
                if i > 0 {
                    w.extend_from_slice(b", ");
                }
                write_value(r, w, true)?;
                w.extend_from_slice(b": ");
                write_value(r, w, false)?;
            }
            w.push(b'}');
            r.leave();
        }
        _ => {
            return Err(EncodeError::Unsupported("MessagePack extension types have no JSON form"));
        }
    }
    Ok(())
}

/// Writes a string the way `json.dumps(ensure_ascii=True)` does.
fn write_string(s: &str, w: &mut Vec<u8>) {
    w.push(b'"');
    for c in s.chars() {
        match c {
            '"' => w.extend_from_slice(b"\\\""),
            '\\' => w.extend_from_slice(b"\\\\"),
            '\n' => w.extend_from_slice(b"\\n"),
            '\r' => w.extend_from_slice(b"\\r"),
            '\t' => w.extend_from_slice(b"\\t"),
            '\u{08}' => w.extend_from_slice(b"\\b"),
            '\u{0c}' => w.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    w.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
            c => w.push(c as u8),
        }
    }
    w.push(b'"');
}

/// Writes a float the way Python's `repr(float)` does (what `json.dumps` uses).
fn write_float(x: f64, w: &mut Vec<u8>) {
    if x.is_nan() {
        w.extend_from_slice(b"NaN");
        return;
    }
    if x.is_infinite() {
        w.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    // Shortest round-trip digits, then Python's layout rules.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    if x.is_sign_negative() {
        w.push(b'-');
    }
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            w.extend_from_slice(b"0.");
            w.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
            w.extend_from_slice(digits.as_bytes());
        } else if digits.len() as i32 <= decpt {
            w.extend_from_slice(digits.as_bytes());
            w.extend(std::iter::repeat_n(b'0', (decpt - digits.len() as i32) as usize));
            w.extend_from_slice(b".0");
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            w.extend_from_slice(a.as_bytes());
            w.push(b'.');
            w.extend_from_slice(b.as_bytes());
        }
    } else {
        let (first, rest) = digits.split_at(1);
        w.extend_from_slice(first.as_bytes());
        if !rest.is_empty() {
            w.push(b'.');
            w.extend_from_slice(rest.as_bytes());
        }
        let e = decpt - 1;
        w.extend_from_slice(format!("e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs()).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Value, to_vec};

    fn json_of(v: &Value) -> String {
        let params = to_vec(&Value::Array(vec![v.clone()])).unwrap();
        let mut w = Vec::new();
        write_message(64, &params, &mut w).unwrap();
        String::from_utf8(w).unwrap()
    }

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (1.5, "1.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123.456, "123.456"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.5e-300, "2.5e-300"),
            (f64::INFINITY, "Infinity"),
        ];
        for (x, py) in cases {
            assert_eq!(json_of(&Value::Float(x)), format!("[64, [{py}]]"), "{x}");
        }
    }

    #[test]
    fn strings_are_ascii_escaped() {
        assert_eq!(json_of(&"é\"\n😀\u{7f}".into()), r#"[64, ["\u00e9\"\n\ud83d\ude00\u007f"]]"#);
    }

    #[test]
    fn reads_what_python_writes() {
        // json.dumps([[70, [float("nan"), float("inf"), -float("inf"), "\ud83d\ude00", {"k": [1, -2, 2.5]}]]])
        let py = br#"[[70, [NaN, Infinity, -Infinity, "\ud83d\ude00", {"k": [1, -2, 2.5]}, 18446744073709551615]]]"#;
        let items = decode_payload(py).unwrap();
        let PayloadItem::Message(m) = &items[0] else { panic!("{items:?}") };
        let v: Vec<Value> = crate::wire::from_slice(&m.params).unwrap();
        assert!(matches!(v[0], Value::Float(f) if f.is_nan()));
        assert_eq!(v[1], Value::Float(f64::INFINITY));
        assert_eq!(v[2], Value::Float(f64::NEG_INFINITY));
        assert_eq!(v[3], Value::Str("😀".into()));
        assert_eq!(v[4], Value::Map(vec![("k".into(), Value::Array(vec![1.into(), (-2).into(), 2.5.into()]))]));
        assert_eq!(v[5], Value::Int(u64::MAX as i128));
        for bad in [&b"[[1, []]"[..], b"{}", b"[[1, [01x]]]", b"[[1, []]] x", b"[\"\\uZZZZ\"]"] {
            assert!(decode_payload(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = format!("[[1, {}{}]]", "[".repeat(100), "]".repeat(100));
        assert_eq!(decode_payload(deep.as_bytes()), Err(DecodeError::TooDeep));
    }

    #[test]
    fn round_trip() {
        let v = Value::Array(vec![
            1.into(),
            (-7).into(),
            "x".into(),
            Value::Nil,
            true.into(),
            Value::Map(vec![("k".into(), Value::Array(vec![]))]),
        ]);
        let params = to_vec(&v).unwrap();
        let mut w = b"[".to_vec();
        write_message(70, &params, &mut w).unwrap();
        w.push(b']');
        let items = decode_payload(&w).unwrap();
        assert_eq!(items, vec![PayloadItem::Message(RawMessage { kind: 70, params: Bytes::from(params) })]);
    }
}
