//! Integration tests of `altan-primitives`: known-answer vectors from independent
//! implementations, golden encodings, signing properties, certificates and addresses.
//!
//! One binary for the whole crate, as the house style asks, so that it links once.

// Test code indexes and counts freely: an overflow here is a failed test, not a consensus fault.
#![allow(clippy::arithmetic_side_effects)]

mod address;
mod certificate;
mod decoding;
mod evidence;
mod golden;
mod signing;
mod vectors;

use altan_primitives::SecretKey;

/// A secret key whose 32 bytes are all `byte` (valid for every nonzero `byte`).
pub fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).expect("a repeated nonzero byte is a valid secret key")
}
