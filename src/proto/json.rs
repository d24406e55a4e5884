//! The one JSON writer of the codecs that speak JSON (officer, live-mutex, lockd's
//! `dump`): objects, arrays and strings appended straight to an output buffer.
//!
//! Replies are written, never built as `serde_json::Value`s, so the bytes on the wire
//! (key order, no spaces) are exactly what each protocol's clients expect; `serde_json`
//! only escapes strings.
//!
//! # Invariants
//! - Every string goes through [`push_str`]: bytes that are not UTF-8 (engine names set
//!   by other protocols) are replaced by U+FFFD, so the output is always valid JSON.
//! - An [`Object`] writes its keys in the order its fields are given, separated by `,`
//!   with no spaces, and its `}` only when ended.

use super::push_addr;
use super::push_u64;
use crate::engine::{ClientId, Engine};

/// Appends `s` as a JSON string; bytes that are not UTF-8 become U+FFFD.
pub fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    let s = String::from_utf8_lossy(s);
    serde_json::to_writer(&mut *out, &*s).expect("writing JSON to a Vec cannot fail");
}

/// Appends `"ip:port"` of `client` (`""` if it is gone).
pub fn push_quoted_addr(out: &mut Vec<u8>, engine: &Engine, client: ClientId) {
    out.push(b'"');
    push_addr(out, engine, client);
    out.push(b'"');
}

/// Appends a JSON array, each item written by `item`.
pub fn push_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, v) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, v);
    }
    out.push(b']');
}

/// Appends a JSON object of `(key, value)` entries in the order given, each value
/// written by `value`.
pub fn push_map<K: AsRef<[u8]>, T>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (K, T)>,
    mut value: impl FnMut(&mut Vec<u8>, T),
) {
    let mut obj = Object::new(out);
    for (k, v) in entries {
        obj = obj.with(k.as_ref(), |out| value(out, v));
    }
    obj.end();
}

/// A JSON object being written: `{`, then one `"key":value` per field, then `}`.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    /// Starts an object in `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// A field whose value `value` writes.
    pub fn with(mut self, key: &[u8], value: impl FnOnce(&mut Vec<u8>)) -> Self {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        push_str(self.out, key);
        self.out.push(b':');
        value(self.out);
        self
    }

    /// A string field.
    pub fn str(self, key: &str, value: &str) -> Self {
        self.bytes(key, value.as_bytes())
    }

    /// A string field from bytes (U+FFFD for what is not UTF-8).
    pub fn bytes(self, key: &str, value: &[u8]) -> Self {
        self.with(key.as_bytes(), |out| push_str(out, value))
    }

    /// A string field, left out when `None`.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// A number field.
    pub fn num(self, key: &str, value: u64) -> Self {
        self.with(key.as_bytes(), |out| push_u64(out, value))
    }

    /// A boolean field.
    pub fn bool(self, key: &str, value: bool) -> Self {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.with(key.as_bytes(), |out| out.extend_from_slice(text))
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push(b'}');
    }

    /// Closes the object and ends the reply line.
    pub fn end_line(self) {
        self.out.extend_from_slice(b"}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers() {
        let mut out = Vec::new();
        push_str(&mut out, b"a\"b\n\xff");
        assert_eq!(out, "\"a\\\"b\\n\u{fffd}\"".as_bytes());
        out.clear();
        push_map(&mut out, [("k", [1u64, 2]), ("e", [3, 4])], |out, v| {
            push_array(out, v, push_u64)
        });
        assert_eq!(out, br#"{"k":[1,2],"e":[3,4]}"#);
        out.clear();
        push_array(&mut out, Vec::<u64>::new(), |_, _| {});
        push_map(&mut out, Vec::<(&str, u64)>::new(), |_, _| {});
        assert_eq!(out, b"[]{}");
    }

    #[test]
    fn objects_keep_field_order_and_escape() {
        let mut out = Vec::new();
        Object::new(&mut out)
            .num("n", 7)
            .str("s", "q\"")
            .bytes("b", b"\xff")
            .opt_str("none", None)
            .opt_str("some", Some("x"))
            .bool("t", true)
            .bool("f", false)
            .with(b"a", |out| push_array(out, [1u64], push_u64))
            .end_line();
        assert_eq!(
            out,
            "{\"n\":7,\"s\":\"q\\\"\",\"b\":\"\u{fffd}\",\"some\":\"x\",\"t\":true,\"f\":false,\"a\":[1]}\n"
                .as_bytes()
        );
        out.clear();
        Object::new(&mut out).end();
        assert_eq!(out, b"{}");
    }
}
