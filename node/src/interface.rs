//! A contract's embedded interface, and SCALE encoding and decoding of its arguments, results and
//! events driven by the type names it lists.
//!
//! The sdk's `#[contract]` macro embeds a JSON description of the methods in the `altan.interface`
//! custom section, and `#[derive(Event)]` / `#[derive(ContractError)]` describe events and errors
//! in `altan.events` and `altan.errors` (the linker concatenates sections of one name, so these
//! hold a sequence of JSON objects). With them the CLI calls a method by name, encodes named
//! arguments, and prints results, reverts and events readably; the RPC serves them as JSON.
//!
//! Types are the Rust type names the macros wrote (`u128`, `Address`, `Vec<Address>`,
//! `Option<String>`, `Result<u64,Error>`...). Primitive types, strings, addresses, hashes,
//! vectors, options, tuples and byte arrays are understood; a method using another type (a struct
//! of the contract's) can still be called with raw input.

use altan_primitives::Hash;
use parity_scale_codec::Decode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod codec;

pub use codec::{Type, decode_value, encode_value};

/// Custom section holding the methods.
pub const INTERFACE_SECTION: &str = "altan.interface";
/// Custom section holding the events.
pub const EVENTS_SECTION: &str = "altan.events";
/// Custom section holding the errors.
pub const ERRORS_SECTION: &str = "altan.errors";

/// Why an interface or a value could not be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceError {
    /// The code is not valid Wasm.
    #[error("the code is not a valid Wasm module: {0}")]
    Wasm(String),
    /// The code has no interface section.
    #[error("the contract has no embedded interface (was it built with the altan sdk?)")]
    Missing,
    /// A section is not the JSON the sdk writes.
    #[error("the {section} section is malformed: {detail}")]
    Malformed {
        /// Which section.
        section: &'static str,
        /// What failed.
        detail: String,
    },
    /// No method of that name.
    #[error("the contract has no method `{name}`; it has: {available}")]
    UnknownMethod {
        /// The name asked for.
        name: String,
        /// The names it has.
        available: String,
    },
    /// An argument is missing or unexpected.
    #[error("{0}")]
    Arguments(String),
    /// A type the encoder does not understand.
    #[error("type `{0}` cannot be encoded from the command line; pass raw input instead")]
    UnsupportedType(String),
    /// A value does not fit its type.
    #[error("`{value}` is not a valid {ty}: {detail}")]
    BadValue {
        /// The type.
        ty: String,
        /// The value given.
        value: String,
        /// Why.
        detail: String,
    },
    /// Bytes do not decode as the type.
    #[error("cannot decode {ty}: {detail}")]
    Decode {
        /// The type.
        ty: String,
        /// Why.
        detail: String,
    },
}

/// A method's argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argument {
    /// Its name.
    pub name: String,
    /// Its Rust type.
    #[serde(rename = "type")]
    pub ty: String,
}

/// A method (or the constructor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Method {
    /// Its name.
    pub name: String,
    /// Its selector as 0x hex (absent for the constructor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Its arguments.
    pub args: Vec<Argument>,
    /// Its return type.
    pub returns: String,
    /// Whether it changes state.
    pub mutates: bool,
    /// Whether it accepts value.
    pub payable: bool,
}

/// An event field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventField {
    /// Its name.
    pub name: String,
    /// Its Rust type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether it is also a topic.
    pub topic: bool,
}

/// An event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDescription {
    /// Its name.
    pub name: String,
    /// Topic 0: blake3 of the name.
    pub signature: Hash,
    /// Its fields, in encoding order.
    pub fields: Vec<EventField>,
}

/// One variant of an error type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorVariant {
    /// The revert code.
    pub code: u32,
    /// The variant's name.
    pub name: String,
    /// Its message.
    pub message: String,
}

/// An error type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDescription {
    /// Its name.
    pub name: String,
    /// Its variants.
    pub variants: Vec<ErrorVariant>,
}

/// Everything a contract describes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractInterface {
    /// The contract's name.
    pub name: String,
    /// Whether it accepts reentrant calls.
    pub reentrant: bool,
    /// The constructor, if any.
    pub constructor: Option<Method>,
    /// The methods.
    pub methods: Vec<Method>,
    /// Its event types.
    #[serde(default)]
    pub events: Vec<EventDescription>,
    /// Its error types.
    #[serde(default)]
    pub errors: Vec<ErrorDescription>,
}

/// The payload of every custom section named `name`, concatenated.
fn custom_sections(code: &[u8], name: &str) -> Result<Vec<u8>, InterfaceError> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(code) {
        let payload = payload.map_err(|e| InterfaceError::Wasm(e.to_string()))?;
        if let wasmparser::Payload::CustomSection(section) = payload
            && section.name() == name
        {
            out.extend_from_slice(section.data());
        }
    }
    Ok(out)
}

fn json_sequence<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    section: &'static str,
) -> Result<Vec<T>, InterfaceError> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<T>()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| InterfaceError::Malformed { section, detail: e.to_string() })
}

impl ContractInterface {
    /// Reads the interface embedded in a contract's Wasm.
    pub fn from_wasm(code: &[u8]) -> Result<ContractInterface, InterfaceError> {
        let methods = custom_sections(code, INTERFACE_SECTION)?;
        if methods.is_empty() {
            return Err(InterfaceError::Missing);
        }
        let mut interface: ContractInterface = serde_json::from_slice(&methods).map_err(|e| {
            InterfaceError::Malformed { section: INTERFACE_SECTION, detail: e.to_string() }
        })?;
        interface.events = json_sequence(&custom_sections(code, EVENTS_SECTION)?, EVENTS_SECTION)?;
        interface.errors = json_sequence(&custom_sections(code, ERRORS_SECTION)?, ERRORS_SECTION)?;
        Ok(interface)
    }

    /// The method called `name`.
    pub fn method(&self, name: &str) -> Result<&Method, InterfaceError> {
        self.methods.iter().find(|m| m.name == name).ok_or_else(|| InterfaceError::UnknownMethod {
            name: name.into(),
            available: self.methods.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// The event type whose signature is `topic`.
    pub fn event(&self, topic: &Hash) -> Option<&EventDescription> {
        self.events.iter().find(|e| e.signature == *topic)
    }

    /// The name of the error variant with `code` (when exactly one error type has it).
    pub fn error_name(&self, code: u32) -> Option<&str> {
        let mut found = self.errors.iter().flat_map(|e| &e.variants).filter(|v| v.code == code);
        match (found.next(), found.next()) {
            (Some(variant), None) => Some(&variant.name),
            _ => None,
        }
    }
}

/// Encodes named arguments for `method`'s arguments, in order. Every argument must be given
/// exactly once.
pub fn encode_arguments(
    method: &Method,
    given: &[(String, Value)],
) -> Result<Vec<u8>, InterfaceError> {
    for (name, _) in given {
        if !method.args.iter().any(|a| &a.name == name) {
            return Err(InterfaceError::Arguments(format!(
                "`{}` takes no argument `{name}`; its arguments are: {}",
                method.name,
                describe_arguments(method)
            )));
        }
    }
    let mut out = Vec::new();
    for argument in &method.args {
        let mut values = given.iter().filter(|(name, _)| *name == argument.name);
        let (Some((_, value)), None) = (values.next(), values.next()) else {
            return Err(InterfaceError::Arguments(format!(
                "`{}` needs each of its arguments once: {}",
                method.name,
                describe_arguments(method)
            )));
        };
        encode_value(&Type::parse(&argument.ty)?, value, &mut out)?;
    }
    Ok(out)
}

/// `name: type, ...` for messages.
pub fn describe_arguments(method: &Method) -> String {
    if method.args.is_empty() {
        return "none".into();
    }
    method.args.iter().map(|a| format!("{}: {}", a.name, a.ty)).collect::<Vec<_>>().join(", ")
}

/// Decodes a method's output: its return value, or `null` for unit.
pub fn decode_output(method: &Method, output: &[u8]) -> Result<Value, InterfaceError> {
    let ty = Type::parse(&method.returns)?;
    let mut input = output;
    let value = decode_value(&ty, &mut input)?;
    if !input.is_empty() {
        return Err(InterfaceError::Decode {
            ty: method.returns.clone(),
            detail: format!("{} bytes left over", input.len()),
        });
    }
    Ok(value)
}

/// A decoded revert: code, message and (when the interface names it) the error variant.
pub fn decode_revert(interface: Option<&ContractInterface>, output: &[u8]) -> Option<Value> {
    let (code, message) = <(u32, String)>::decode(&mut &output[..]).ok()?;
    let name = interface.and_then(|i| i.error_name(code));
    Some(serde_json::json!({ "code": code, "name": name, "message": message }))
}

/// Decodes an event's data into named fields, if its topic 0 names one of `interface`'s events.
pub fn decode_event(interface: &ContractInterface, topics: &[Hash], data: &[u8]) -> Option<Value> {
    let description = interface.event(topics.first()?)?;
    let mut input = data;
    let mut fields = serde_json::Map::new();
    for field in &description.fields {
        let ty = Type::parse(&field.ty).ok()?;
        fields.insert(field.name.clone(), decode_value(&ty, &mut input).ok()?);
    }
    Some(serde_json::json!({ "event": description.name, "fields": fields }))
}

#[cfg(test)]
mod tests {
    use altan_primitives::Address;
    use parity_scale_codec::{Compact, Encode};

    use super::*;
    use proptest::prelude::*;

    fn roundtrip(ty: &str, value: Value) -> Value {
        let ty = Type::parse(ty).unwrap();
        let mut out = Vec::new();
        encode_value(&ty, &value, &mut out).unwrap();
        let mut input = &out[..];
        let decoded = decode_value(&ty, &mut input).unwrap();
        assert!(input.is_empty());
        decoded
    }

    #[test]
    fn types_parse_as_the_macros_write_them() {
        assert_eq!(Type::parse("Vec<Address>").unwrap(), Type::Vec(Box::new(Type::Address)));
        assert_eq!(
            Type::parse("Result<Option<Address>,Error>").unwrap(),
            Type::Result(Box::new(Type::Option(Box::new(Type::Address))))
        );
        assert_eq!(
            Type::parse("(u8,String)").unwrap(),
            Type::Tuple(vec![Type::Unsigned(8), Type::String])
        );
        assert_eq!(Type::parse("[u8;4]").unwrap(), Type::ByteArray(4));
        assert!(matches!(Type::parse("Terms"), Err(InterfaceError::UnsupportedType(_))));
    }

    #[test]
    fn values_encode_as_scale() {
        let mut out = Vec::new();
        encode_value(&Type::Unsigned(128), &Value::from("1000"), &mut out).unwrap();
        assert_eq!(out, 1000u128.encode());
        let mut out = Vec::new();
        encode_value(&Type::String, &Value::from("Altan"), &mut out).unwrap();
        assert_eq!(out, "Altan".to_string().encode());
        let owners = serde_json::json!(["0x0000000000000000000000000000000000000001"]);
        let mut out = Vec::new();
        encode_value(&Type::Vec(Box::new(Type::Address)), &owners, &mut out).unwrap();
        let mut one = [0u8; 20];
        one[19] = 1;
        assert_eq!(out, vec![Address(one)].encode());
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut out = Vec::new();
        assert!(encode_value(&Type::Unsigned(8), &Value::from("256"), &mut out).is_err());
        assert!(encode_value(&Type::Signed(8), &Value::from("-129"), &mut out).is_err());
        assert!(encode_value(&Type::Unsigned(64), &Value::from("-1"), &mut out).is_err());
        assert!(encode_value(&Type::Address, &Value::from("0x12"), &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn truncated_and_lying_input_does_not_decode() {
        assert!(decode_value(&Type::Unsigned(64), &mut &[1u8, 2][..]).is_err());
        // A vector claiming a billion items in a few bytes.
        let mut lying = Compact(1_000_000_000u32).encode();
        lying.push(1);
        assert!(decode_value(&Type::Vec(Box::new(Type::Unsigned(8))), &mut &lying[..]).is_err());
    }

    proptest! {
        #[test]
        fn integers_roundtrip(n: u128, m: i64, b: bool) {
            prop_assert_eq!(roundtrip("u128", Value::from(n.to_string())), Value::String(n.to_string()));
            prop_assert_eq!(roundtrip("i64", Value::from(m.to_string())), Value::String(m.to_string()));
            prop_assert_eq!(roundtrip("bool", Value::Bool(b)), Value::Bool(b));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes: Vec<u8>) {
            for ty in ["Vec<Vec<u8>>", "Option<(u32,String)>", "Vec<Address>", "i128", "[u8;3]"] {
                let _ = decode_value(&Type::parse(ty).unwrap(), &mut &bytes[..]);
            }
        }
    }
}
