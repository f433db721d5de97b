//! The JSON shapes of the RPC: bytes and hashes as 0x hex, addresses with their EIP-55
//! checksum, balances (u128) as decimal strings, heights and gas as numbers, field names in
//! camelCase.

use std::fmt;

use altan_primitives::Hash;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod block;
mod call;
mod node;

pub use block::*;
pub use call::*;
pub use node::*;

/// Bytes as 0x hex.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| D::Error::custom("expected 0x-prefixed hex bytes"))?;
        hex::decode(digits).map(HexBytes).map_err(|e| D::Error::custom(format!("bad hex: {e}")))
    }
}

/// A balance as a decimal string (u128 does not fit a JSON number safely).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Amount(pub u128);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) => s
                .parse()
                .map(Amount)
                .map_err(|e| D::Error::custom(format!("bad amount {s:?}: {e}"))),
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(|n| Amount(u128::from(n)))
                .ok_or_else(|| D::Error::custom("an amount is a non-negative integer")),
            _ => Err(D::Error::custom("an amount is a decimal string")),
        }
    }
}

/// Which block: a height, a hash, `"latest"` or `"final"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    /// By height.
    Number(u64),
    /// By hash.
    Hash(Hash),
    /// The newest block.
    Latest,
    /// The newest final block.
    Final,
}

impl Serialize for BlockId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BlockId::Number(n) => serializer.serialize_u64(*n),
            BlockId::Hash(h) => serializer.serialize_str(&h.to_string()),
            BlockId::Latest => serializer.serialize_str("latest"),
            BlockId::Final => serializer.serialize_str("final"),
        }
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let expected = "a block number, a 0x block hash, \"latest\" or \"final\"";
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(BlockId::Number)
                .ok_or_else(|| D::Error::custom(format!("expected {expected}"))),
            serde_json::Value::String(s) => match s.as_str() {
                "latest" => Ok(BlockId::Latest),
                "final" => Ok(BlockId::Final),
                text => text
                    .parse()
                    .map(BlockId::Hash)
                    .map_err(|_| D::Error::custom(format!("expected {expected}, found {text:?}"))),
            },
            other => Err(D::Error::custom(format!("expected {expected}, found {other}"))),
        }
    }
}
