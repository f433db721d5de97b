//! 32-byte blake3 hashes.

use core::fmt;
use core::str::FromStr;

use parity_scale_codec::{Decode, Encode, MaxEncodedLen};

/// A 32-byte blake3 digest: transaction and block ids, Merkle nodes, code hashes, state roots.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, MaxEncodedLen,
)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash, used where a parent or root does not exist yet (genesis's parent).
    pub const ZERO: Hash = Hash([0; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// blake3 of `data`.
pub fn blake3(data: &[u8]) -> Hash {
    Hash(*::blake3::hash(data).as_bytes())
}

/// blake3 of a domain tag followed by the parts, each part length-prefixed so that no two
/// different lists of parts hash the same way.
pub fn blake3_tagged(tag: &[u8], parts: &[&[u8]]) -> Hash {
    let mut hasher = ::blake3::Hasher::new();
    hasher.update(&(tag.len() as u64).to_le_bytes());
    hasher.update(tag);
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    Hash(*hasher.finalize().as_bytes())
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a hex string was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string does not start with `0x`.
    #[error("expected a 0x prefix")]
    MissingPrefix,
    /// A character is not a hex digit, or the number of digits is odd.
    #[error("invalid hex digits")]
    InvalidDigits,
    /// The number of bytes is wrong for the type.
    #[error("expected {expected} bytes, found {found}")]
    WrongLength {
        /// The number of bytes the type holds.
        expected: usize,
        /// The number of bytes given.
        found: usize,
    },
}

/// Decodes `0x`-prefixed hex into exactly `N` bytes.
pub(crate) fn decode_hex_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let digits = s.strip_prefix("0x").ok_or(HexError::MissingPrefix)?;
    let bytes = hex::decode(digits).map_err(|_| HexError::InvalidDigits)?;
    let found = bytes.len();
    bytes.try_into().map_err(|_| HexError::WrongLength { expected: N, found })
}

impl FromStr for Hash {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex_array(s).map(Hash)
    }
}

/// Serde as `0x` hex strings, the form JSON-RPC and chain spec files use.
#[cfg(feature = "serde")]
pub(crate) mod serde_hex {
    use alloc::string::{String, ToString};
    use core::fmt::Display;
    use core::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serializes any value whose `Display` is its hex form.
    pub fn serialize<T: Display, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    /// Deserializes any value whose `FromStr` reads its hex form.
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// Implements serde for a type through its `Display` and `FromStr` hex forms.
macro_rules! serde_via_hex {
    ($ty:ty) => {
        #[cfg(feature = "serde")]
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                crate::hash::serde_hex::serialize(self, s)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::hash::serde_hex::deserialize(d)
            }
        }
    };
}
pub(crate) use serde_via_hex;

serde_via_hex!(Hash);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hex_round_trip() {
        let hash = blake3(b"altan");
        assert_eq!(hash.to_string().parse::<Hash>(), Ok(hash));
    }

    #[test]
    fn hex_errors_are_specific() {
        assert_eq!("00".parse::<Hash>(), Err(HexError::MissingPrefix));
        assert_eq!("0xzz".parse::<Hash>(), Err(HexError::InvalidDigits));
        assert_eq!("0x00".parse::<Hash>(), Err(HexError::WrongLength { expected: 32, found: 1 }));
    }

    #[test]
    fn tagged_hash_separates_parts() {
        assert_ne!(blake3_tagged(b"t", &[b"ab", b"c"]), blake3_tagged(b"t", &[b"a", b"bc"]));
        assert_ne!(blake3_tagged(b"t1", &[b"x"]), blake3_tagged(b"t2", &[b"x"]));
    }
}
