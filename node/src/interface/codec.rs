//! SCALE encoding and decoding of JSON values by the Rust type names an interface lists.

use altan_primitives::{Address, Hash};
use parity_scale_codec::{Compact, Decode, Encode};
use serde_json::Value;

use super::InterfaceError;

/// A type the codec understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `()`.
    Unit,
    /// `bool`.
    Bool,
    /// An unsigned integer of so many bits.
    Unsigned(u32),
    /// A signed integer of so many bits.
    Signed(u32),
    /// `String`.
    String,
    /// `Address`.
    Address,
    /// `Hash`.
    Hash,
    /// `Vec<u8>`: shown as hex.
    Bytes,
    /// `[u8; N]`: shown as hex.
    ByteArray(usize),
    /// `Vec<T>`.
    Vec(Box<Type>),
    /// `Option<T>`.
    Option(Box<Type>),
    /// A tuple.
    Tuple(Vec<Type>),
    /// `Result<T, E>` as a method's return type: the output holds the `T` (errors revert).
    Result(Box<Type>),
}

impl Type {
    /// Parses a type name as the sdk macros write it (no spaces).
    pub fn parse(name: &str) -> Result<Type, InterfaceError> {
        let name: String = name.chars().filter(|c| !c.is_whitespace()).collect();
        let unsupported = || InterfaceError::UnsupportedType(name.clone());
        let generic = |prefix: &str| -> Option<&str> {
            name.strip_prefix(prefix).and_then(|rest| rest.strip_suffix('>'))
        };
        Ok(match name.as_str() {
            "()" => Type::Unit,
            "bool" => Type::Bool,
            "u8" => Type::Unsigned(8),
            "u16" => Type::Unsigned(16),
            "u32" => Type::Unsigned(32),
            "u64" => Type::Unsigned(64),
            "u128" | "Balance" => Type::Unsigned(128),
            "i8" => Type::Signed(8),
            "i16" => Type::Signed(16),
            "i32" => Type::Signed(32),
            "i64" => Type::Signed(64),
            "i128" => Type::Signed(128),
            "String" => Type::String,
            "Address" => Type::Address,
            "Hash" => Type::Hash,
            "Vec<u8>" => Type::Bytes,
            _ => {
                if let Some(inner) = generic("Vec<") {
                    Type::Vec(Box::new(Type::parse(inner)?))
                } else if let Some(inner) = generic("Option<") {
                    Type::Option(Box::new(Type::parse(inner)?))
                } else if let Some(inner) = generic("Result<") {
                    let parts = split_top_level(inner);
                    let ok = parts.first().ok_or_else(unsupported)?;
                    Type::Result(Box::new(Type::parse(ok)?))
                } else if let Some(inner) =
                    name.strip_prefix("[u8;").and_then(|r| r.strip_suffix(']'))
                {
                    Type::ByteArray(inner.parse().map_err(|_| unsupported())?)
                } else if let Some(inner) = name.strip_prefix('(').and_then(|r| r.strip_suffix(')'))
                {
                    Type::Tuple(
                        split_top_level(inner)
                            .into_iter()
                            .filter(|part| !part.is_empty())
                            .map(Type::parse)
                            .collect::<Result<_, _>>()?,
                    )
                } else {
                    return Err(unsupported());
                }
            }
        })
    }
}

/// Splits `a,b<c,d>,e` at the commas outside brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0_usize;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '<' | '(' | '[' => depth = depth.saturating_add(1),
            '>' | ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index.saturating_add(1);
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn bad(ty: &Type, value: &Value, detail: impl ToString) -> InterfaceError {
    InterfaceError::BadValue {
        ty: format!("{ty:?}"),
        value: match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        detail: detail.to_string(),
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn hex_bytes(ty: &Type, value: &Value) -> Result<Vec<u8>, InterfaceError> {
    let text = text_of(value).ok_or_else(|| bad(ty, value, "expected 0x hex"))?;
    let digits = text.strip_prefix("0x").unwrap_or(&text);
    hex::decode(digits).map_err(|e| bad(ty, value, e))
}

/// Encodes `value` (JSON, or strings for anything) as SCALE `ty` onto `out`.
pub fn encode_value(ty: &Type, value: &Value, out: &mut Vec<u8>) -> Result<(), InterfaceError> {
    match ty {
        Type::Unit => {}
        Type::Bool => {
            let b = match value {
                Value::Bool(b) => *b,
                Value::String(s) if s == "true" => true,
                Value::String(s) if s == "false" => false,
                _ => return Err(bad(ty, value, "expected true or false")),
            };
            b.encode_to(out);
        }
        Type::Unsigned(bits) => {
            let text = text_of(value).ok_or_else(|| bad(ty, value, "expected a number"))?;
            let n: u128 = text.replace('_', "").parse().map_err(|e| bad(ty, value, e))?;
            let bytes = usize::try_from(*bits / 8).unwrap_or(16);
            if *bits < 128 && n >> bits != 0 {
                return Err(bad(ty, value, format!("does not fit in {bits} bits")));
            }
            out.extend_from_slice(&n.to_le_bytes()[..bytes]);
        }
        Type::Signed(bits) => {
            let text = text_of(value).ok_or_else(|| bad(ty, value, "expected a number"))?;
            let n: i128 = text.replace('_', "").parse().map_err(|e| bad(ty, value, e))?;
            let bytes = usize::try_from(*bits / 8).unwrap_or(16);
            let fits = *bits == 128 || {
                let limit = 1_i128 << (bits.saturating_sub(1));
                n >= limit.saturating_neg() && n < limit
            };
            if !fits {
                return Err(bad(ty, value, format!("does not fit in {bits} bits")));
            }
            out.extend_from_slice(&n.to_le_bytes()[..bytes]);
        }
        Type::String => {
            let text = text_of(value).ok_or_else(|| bad(ty, value, "expected a string"))?;
            text.encode_to(out);
        }
        Type::Address => {
            let text = text_of(value).ok_or_else(|| bad(ty, value, "expected a 0x address"))?;
            let address: Address = text.parse().map_err(|e| bad(ty, value, e))?;
            address.encode_to(out);
        }
        Type::Hash => {
            let text = text_of(value).ok_or_else(|| bad(ty, value, "expected a 0x hash"))?;
            let hash: Hash = text.parse().map_err(|e| bad(ty, value, e))?;
            hash.encode_to(out);
        }
        Type::Bytes => hex_bytes(ty, value)?.encode_to(out),
        Type::ByteArray(len) => {
            let bytes = hex_bytes(ty, value)?;
            if bytes.len() != *len {
                return Err(bad(ty, value, format!("expected {len} bytes")));
            }
            out.extend_from_slice(&bytes);
        }
        Type::Vec(inner) => {
            let items = list_of(ty, value)?;
            let len = u32::try_from(items.len()).map_err(|e| bad(ty, value, e))?;
            Compact(len).encode_to(out);
            for item in &items {
                encode_value(inner, item, out)?;
            }
        }
        Type::Option(inner) => match value {
            Value::Null => out.push(0),
            Value::String(s) if s == "none" || s == "null" => out.push(0),
            some => {
                out.push(1);
                encode_value(inner, some, out)?;
            }
        },
        Type::Tuple(types) => {
            let items = list_of(ty, value)?;
            if items.len() != types.len() {
                return Err(bad(ty, value, format!("expected {} items", types.len())));
            }
            for (inner, item) in types.iter().zip(&items) {
                encode_value(inner, item, out)?;
            }
        }
        Type::Result(_) => return Err(InterfaceError::UnsupportedType("Result argument".into())),
    }
    Ok(())
}

/// A JSON array, or a string holding one, or comma-separated items.
fn list_of(ty: &Type, value: &Value) -> Result<Vec<Value>, InterfaceError> {
    match value {
        Value::Array(items) => Ok(items.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => Ok(items),
            _ if s.is_empty() => Ok(Vec::new()),
            _ => Ok(s.split(',').map(|part| Value::String(part.trim().to_string())).collect()),
        },
        _ => Err(bad(ty, value, "expected a list")),
    }
}

/// Decodes SCALE `ty` from `input` into JSON (u64 and wider integers as strings, so that no
/// client loses precision).
pub fn decode_value(ty: &Type, input: &mut &[u8]) -> Result<Value, InterfaceError> {
    let fail = |e: parity_scale_codec::Error| InterfaceError::Decode {
        ty: format!("{ty:?}"),
        detail: e.to_string(),
    };
    let take = |input: &mut &[u8], len: usize| -> Result<Vec<u8>, InterfaceError> {
        if input.len() < len {
            return Err(InterfaceError::Decode {
                ty: format!("{ty:?}"),
                detail: "too short".into(),
            });
        }
        let (head, rest) = input.split_at(len);
        *input = rest;
        Ok(head.to_vec())
    };
    Ok(match ty {
        Type::Unit => Value::Null,
        Type::Bool => Value::Bool(bool::decode(input).map_err(fail)?),
        Type::Unsigned(bits) => {
            let bytes = take(input, usize::try_from(*bits / 8).unwrap_or(16))?;
            let mut le = [0u8; 16];
            le[..bytes.len()].copy_from_slice(&bytes);
            let n = u128::from_le_bytes(le);
            if *bits <= 32 {
                Value::from(u64::try_from(n).unwrap_or(u64::MAX))
            } else {
                Value::String(n.to_string())
            }
        }
        Type::Signed(bits) => {
            let width = usize::try_from(*bits / 8).unwrap_or(16);
            let bytes = take(input, width)?;
            let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
            let mut le = [fill; 16];
            le[..bytes.len()].copy_from_slice(&bytes);
            let n = i128::from_le_bytes(le);
            if *bits <= 32 {
                Value::from(i64::try_from(n).unwrap_or(i64::MAX))
            } else {
                Value::String(n.to_string())
            }
        }
        Type::String => Value::String(String::decode(input).map_err(fail)?),
        Type::Address => Value::String(Address::decode(input).map_err(fail)?.to_string()),
        Type::Hash => Value::String(Hash::decode(input).map_err(fail)?.to_string()),
        Type::Bytes => {
            Value::String(format!("0x{}", hex::encode(Vec::<u8>::decode(input).map_err(fail)?)))
        }
        Type::ByteArray(len) => Value::String(format!("0x{}", hex::encode(take(input, *len)?))),
        Type::Vec(inner) => {
            let Compact(len) = Compact::<u32>::decode(input).map_err(fail)?;
            // Each item takes at least one byte (or none for unit): a length past the input is a lie.
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if **inner != Type::Unit && len > input.len() {
                return Err(InterfaceError::Decode {
                    ty: format!("{ty:?}"),
                    detail: "length past the end".into(),
                });
            }
            let mut items = Vec::with_capacity(len.min(input.len()));
            for _ in 0..len {
                items.push(decode_value(inner, input)?);
            }
            Value::Array(items)
        }
        Type::Option(inner) => match u8::decode(input).map_err(fail)? {
            0 => Value::Null,
            1 => decode_value(inner, input)?,
            _ => {
                return Err(InterfaceError::Decode {
                    ty: format!("{ty:?}"),
                    detail: "bad option tag".into(),
                });
            }
        },
        Type::Tuple(types) => {
            Value::Array(types.iter().map(|t| decode_value(t, input)).collect::<Result<_, _>>()?)
        }
        Type::Result(ok) => decode_value(ok, input)?,
    })
}
