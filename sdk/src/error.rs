//! Errors that revert a call, readable by clients.

use alloc::string::String;

use parity_scale_codec::{Decode, Encode};

/// What a reverting call returns: a code that programs match on and a message for people. The
/// revert data of a call is the SCALE encoding of this.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Revert {
    /// The error's code; by convention the variant index of the contract's error enum.
    pub code: u32,
    /// What went wrong.
    pub message: String,
}

/// A contract's error type. Returning `Err(e)` from a contract method reverts the call with
/// `Revert { code: e.code(), message: e.message() }`.
pub trait ContractError {
    /// The error type's description (each variant's code, name and message) as JSON, as embedded
    /// in the contract's `altan.errors` custom section.
    const INTERFACE: &'static str;

    /// The code clients match on.
    fn code(&self) -> u32;
    /// A message for people.
    fn message(&self) -> String;

    /// The revert data this error produces.
    fn to_revert(&self) -> Revert {
        Revert { code: self.code(), message: self.message() }
    }
}

impl ContractError for Revert {
    const INTERFACE: &'static str = "";

    fn code(&self) -> u32 {
        self.code
    }

    fn message(&self) -> String {
        self.message.clone()
    }
}
