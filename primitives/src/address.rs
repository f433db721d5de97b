//! 20-byte account and contract addresses, shown with EIP-55 checksums.

use core::fmt;
use core::str::FromStr;

use parity_scale_codec::{Decode, Encode, MaxEncodedLen};

use crate::crypto::keccak256;
use crate::hash::{HexError, decode_hex_array, serde_via_hex};

/// An account or contract address: for accounts, the last 20 bytes of keccak256 of the
/// uncompressed public key (as Ethereum derives it), so familiar keys map to familiar addresses.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, MaxEncodedLen,
)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The zero address. It has no known key; nothing can be signed for it.
    pub const ZERO: Address = Address([0; 20]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The address of the 64-byte uncompressed public key `x || y` (without the 0x04 prefix).
    pub fn from_uncompressed_xy(xy: &[u8; 64]) -> Address {
        let digest = keccak256(xy);
        let mut out = [0; 20];
        out.copy_from_slice(&digest[12..]);
        Address(out)
    }

    /// The EIP-55 form: hex digits upper-cased where the keccak256 of the lower-case hex has a
    /// nibble >= 8, so that a mistyped address almost always fails its checksum.
    pub fn to_checksum(&self) -> alloc::string::String {
        let lower = hex::encode(self.0);
        let digest = keccak256(lower.as_bytes());
        let mut out = alloc::string::String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (digest[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if nibble >= 8 { c.to_ascii_uppercase() } else { c });
        }
        out
    }
}

/// Why an address string was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressParseError {
    /// The hex itself is malformed.
    #[error(transparent)]
    Hex(#[from] HexError),
    /// The string mixes upper and lower case but not as EIP-55 prescribes.
    #[error("address checksum does not match (expected {expected})")]
    BadChecksum {
        /// The correctly checksummed form of the same bytes.
        expected: alloc::string::String,
    },
}

impl FromStr for Address {
    type Err = AddressParseError;

    /// Accepts all-lower-case, all-upper-case or correctly checksummed hex; mixed case with a
    /// wrong checksum is rejected, as wallets do, because it signals a typo.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let address = Address(decode_hex_array(s)?);
        let digits = &s[2..];
        let mixed = digits.chars().any(|c| c.is_ascii_lowercase())
            && digits.chars().any(|c| c.is_ascii_uppercase());
        if mixed {
            let expected = address.to_checksum();
            if expected != s {
                return Err(AddressParseError::BadChecksum { expected });
            }
        }
        Ok(address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<[u8; 20]> for Address {
    fn from(bytes: [u8; 20]) -> Self {
        Address(bytes)
    }
}

serde_via_hex!(Address);

#[cfg(test)]
mod tests {
    use super::*;

    // The checksum examples of EIP-55 itself.
    const EIP55: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_examples_round_trip() {
        for s in EIP55 {
            let address: Address = s.parse().unwrap();
            assert_eq!(address.to_checksum(), s);
        }
    }

    #[test]
    fn wrong_checksum_is_rejected_but_single_case_is_accepted() {
        let s = EIP55[0];
        let flipped = s.replacen('a', "A", 1);
        assert!(matches!(flipped.parse::<Address>(), Err(AddressParseError::BadChecksum { .. })));
        let lower = s.to_ascii_lowercase();
        assert_eq!(lower.parse::<Address>().unwrap().to_checksum(), s);
    }
}
