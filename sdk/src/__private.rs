//! What `#[contract]` generates calls into. Not a public API: it may change with the macros.

pub use alloc::string::String;
pub use alloc::vec::Vec;
pub use altan_primitives::Hash;
use parity_scale_codec::{Decode, DecodeAll, Encode};

use crate::env;
use crate::error::{ContractError, Revert};

use crate::codes;

fn sdk_revert(code: u32, message: &str) -> ! {
    env::revert(&Revert { code, message: message.into() })
}

/// Reverts: no method has this selector.
pub fn unknown_selector() -> ! {
    sdk_revert(codes::UNKNOWN_SELECTOR, "unknown method selector")
}

/// Reverts if the call carries value (for methods not marked `#[payable]`).
pub fn non_payable() {
    if env::value() != 0 {
        sdk_revert(codes::NOT_PAYABLE, "method is not payable")
    }
}

/// Decodes a method's arguments (a tuple), reverting if they do not decode exactly.
pub fn decode_args<T: Decode>(input: &[u8]) -> T {
    T::decode_all(&mut &input[..])
        .unwrap_or_else(|_| sdk_revert(codes::BAD_ARGUMENTS, "arguments do not decode"))
}

/// Returns a method's value.
pub fn finish_value<T: Encode>(value: &T) {
    let bytes = value.encode();
    if !bytes.is_empty() {
        env::set_output(&bytes);
    }
}

/// Returns a method's `Ok` value, or reverts with its error.
pub fn finish_result<T: Encode, E: ContractError>(result: Result<T, E>) {
    match result {
        Ok(value) => finish_value(&value),
        Err(error) => env::revert(&error),
    }
}

/// A topic from an indexed event field: its encoding padded to 32 bytes, or its blake3 hash when
/// longer.
pub fn topic<T: Encode>(value: &T) -> Hash {
    let bytes = value.encode();
    if bytes.len() <= 32 {
        let mut topic = [0; 32];
        topic[..bytes.len()].copy_from_slice(&bytes);
        Hash(topic)
    } else {
        env::blake3(&bytes)
    }
}
