//! The Altan contract SDK.
//!
//! A contract is a `no_std` Rust crate compiled to `wasm32-unknown-unknown`. This crate gives it:
//!
//! - [`env`]: the caller, the value sent, balances, block height and time, transfers, hashes,
//!   signature recovery, gas left, events, and raw calls to other contracts;
//! - [`storage`]: typed storage that reads and writes one key at a time ([`Lazy`] for a single
//!   value, [`Mapping`] for a keyed map), never the whole contract state per call;
//! - [`Revert`] and [`ContractError`]: typed errors that revert the call with a code and a message a
//!   client can read;
//! - [`test`] (off chain only): a test chain with the runtime's semantics and limits, so that
//!   `cargo test` on a contract runs in milliseconds without a node.
//!
//! The same contract source compiles for both: on `wasm32` every [`env`] function is a host call
//! of the `altan_v1` ABI (see docs/host-abi.md); on any other target it acts on the thread's
//! [`test`] chain.
//!
//! # The call convention
//!
//! Everything above the host ABI is SCALE: a call's input is a 4-byte method selector (the first
//! four bytes of blake3 of the method's name) followed by the SCALE-encoded arguments; a
//! constructor's input is its encoded arguments; a successful call returns the encoded result; a
//! failed one reverts with an encoded [`Revert`].
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

#[doc(hidden)]
pub mod __private;
pub mod env;
mod error;
pub mod event;
pub mod storage;
#[cfg_attr(target_arch = "wasm32", path = "sys_wasm.rs")]
#[cfg_attr(not(target_arch = "wasm32"), path = "sys_test.rs")]
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod test;

pub use altan_primitives::{Address, Balance, Hash, Signature};
pub use altan_sdk_macros::{ContractError, Event, contract};
pub use error::{ContractError, Revert};
pub use event::{Event, emit};
pub use parity_scale_codec::{self as codec, Decode, Encode};
pub use storage::{Lazy, Mapping};

/// The revert codes the SDK itself uses, above any contract's own.
pub mod codes {
    /// The input does not start with a known method selector.
    pub const UNKNOWN_SELECTOR: u32 = 0xffff_0001;
    /// The arguments do not decode as the method's parameters.
    pub const BAD_ARGUMENTS: u32 = 0xffff_0002;
    /// Value was sent to a method that is not payable.
    pub const NOT_PAYABLE: u32 = 0xffff_0003;
}

/// The input of a call to the method with `selector` and `args` (a tuple of the arguments).
pub fn call_input<A: Encode>(selector: [u8; 4], args: &A) -> alloc::vec::Vec<u8> {
    let mut input = alloc::vec::Vec::with_capacity(4usize.saturating_add(args.size_hint()));
    input.extend_from_slice(&selector);
    args.encode_to(&mut input);
    input
}

/// The method selector of `name`: the first four bytes of its blake3 hash.
pub fn selector(name: &str) -> [u8; 4] {
    let hash = altan_primitives::blake3(name.as_bytes());
    let mut out = [0; 4];
    out.copy_from_slice(&hash.as_bytes()[..4]);
    out
}
