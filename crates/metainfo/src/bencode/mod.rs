//! Bencode (BEP 3): a strict, bounded decoder that keeps byte spans, and an encoder.
//!
//! ```
//! use shoal_metainfo::bencode::{decode, encode, Value};
//!
//! let doc = decode(b"d4:spaml1:a1:bee").unwrap();
//! let list = doc.root().get(b"spam").unwrap();
//! assert_eq!(list.span(), 7..15);
//! assert_eq!(encode(&doc.root().to_value()), b"d4:spaml1:a1:bee");
//! # let _ = Value::Int(0);
//! ```

mod decode;
mod node;

use std::collections::BTreeMap;

pub use decode::{DecodeLimits, DecodeOptions, decode, decode_with};
pub use node::{Children, DictEntries, Document, Node};

/// An owned bencode value. Dictionaries are a `BTreeMap`, so encoding is always canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Self::Bytes(b.into())
    }

    /// A dictionary from `(key, value)` pairs; keys end up sorted whatever their order here.
    pub fn dict<'k>(entries: impl IntoIterator<Item = (&'k str, Value)>) -> Self {
        Self::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Bytes(s.as_bytes().to_vec())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// Encodes a value canonically (sorted keys, shortest integers).
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the encoding of `value` to `out`. Iterative, so nesting depth costs heap, not stack.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    enum Step<'v> {
        Value(&'v Value),
        Key(&'v [u8]),
        End,
    }
    let mut stack = vec![Step::Value(value)];
    while let Some(step) = stack.pop() {
        match step {
            Step::End => out.push(b'e'),
            Step::Key(key) => write_bytes(key, out),
            Step::Value(Value::Int(i)) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Step::Value(Value::Bytes(b)) => write_bytes(b, out),
            Step::Value(Value::List(items)) => {
                out.push(b'l');
                stack.push(Step::End);
                stack.extend(items.iter().rev().map(Step::Value));
            }
            Step::Value(Value::Dict(map)) => {
                out.push(b'd');
                stack.push(Step::End);
                for (k, v) in map.iter().rev() {
                    stack.push(Step::Value(v));
                    stack.push(Step::Key(k));
                }
            }
        }
    }
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests;
