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
pub fn decode_payload(payload: &[u8]) -> Result<Vec<PayloadItem>, DecodeError> {
    let root: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| DecodeError::Invalid("payload is not valid JSON"))?;
    let serde_json::Value::Array(items) = root else {
        return Err(DecodeError::Invalid("a JSON payload must be an array of messages"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let serde_json::Value::Array(pair) = item else {
            out.push(PayloadItem::BadShape("a message must be the array [type, parameters]"));
            continue;
        };
        if pair.len() != 2 {
            out.push(PayloadItem::BadShape("a message must be a 2-element array"));
            continue;
        }
        let Some(kind) = pair[0].as_u64() else {
            out.push(PayloadItem::BadShape("the message type must be a non-negative integer"));
            continue;
        };
        if !pair[1].is_array() {
            out.push(PayloadItem::BadShape("the message parameters must be an array"));
            continue;
        }
        let mut params = Vec::new();
        json_to_msgpack(&pair[1], &mut params);
        out.push(PayloadItem::Message(RawMessage { kind, params: Bytes::from(params) }));
    }
    Ok(out)
}

fn json_to_msgpack(v: &serde_json::Value, w: &mut Vec<u8>) {
    use serde_json::Value as J;
    match v {
        J::Null => mp::write_nil(w),
        J::Bool(b) => mp::write_bool(w, *b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                mp::write_uint(w, u)
            } else if let Some(i) = n.as_i64() {
                mp::write_sint(w, i)
            } else {
                mp::write_f64(w, n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => mp::write_str(w, s),
        J::Array(a) => {
            mp::write_array_len(w, a.len());
            for x in a {
                json_to_msgpack(x, w);
            }
        }
        J::Object(m) => {
            mp::write_map_len(w, m.len());
            for (k, x) in m {
                mp::write_str(w, k);
                json_to_msgpack(x, w);
            }
        }
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
            c if (c as u32) < 0x20 || (c as u32) > 0x7e && (c as u32) != 0x7f => {
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
        assert_eq!(json_of(&"é\"\n😀".into()), r#"[64, ["\u00e9\"\n\ud83d\ude00"]]"#);
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
