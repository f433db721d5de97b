//! What a contract can ask of the chain. On `wasm32` each function is a host call; off chain it
//! acts on the thread's [`crate::test::TestChain`].

use alloc::vec::Vec;

use altan_primitives::{Address, Balance, Hash, Signature};
use parity_scale_codec::{Decode, DecodeAll, Encode};

use crate::error::{ContractError, Revert};
use crate::sys;

/// Who called: the sender of the transaction, or the contract that made this call.
pub fn caller() -> Address {
    sys::caller()
}

/// This contract's address.
pub fn self_address() -> Address {
    sys::self_address()
}

/// The native value sent with this call (already credited to this contract).
pub fn value() -> Balance {
    sys::value()
}

/// This contract's native balance.
pub fn balance() -> Balance {
    sys::balance(&sys::self_address())
}

/// Any account's native balance.
pub fn balance_of(account: &Address) -> Balance {
    sys::balance(account)
}

/// The height of the block being executed.
pub fn block_height() -> u64 {
    sys::block_height()
}

/// The timestamp of the block being executed, in ms since the Unix epoch.
pub fn block_time() -> u64 {
    sys::block_time()
}

/// The chain id.
pub fn chain_id() -> u64 {
    sys::chain_id()
}

/// Gas left for this call (off chain: `u64::MAX`).
pub fn gas_left() -> u64 {
    sys::gas_left()
}

/// blake3 of `data`.
pub fn blake3(data: &[u8]) -> Hash {
    sys::blake3(data)
}

/// keccak256 of `data`.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    sys::keccak256(data)
}

/// The address that signed `prehash`, if the signature is valid (low-S, recovery id 0 or 1).
pub fn recover(prehash: &Hash, signature: &Signature) -> Option<Address> {
    sys::recover(prehash, signature)
}

/// The native transfer could not be made: this contract holds less than the amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsufficientBalance;

/// Sends native value from this contract. A transfer to a contract does not run its code.
pub fn transfer(to: &Address, amount: Balance) -> Result<(), InsufficientBalance> {
    if sys::transfer(to, amount) { Ok(()) } else { Err(InsufficientBalance) }
}

/// Emits an event with up to four 32-byte topics (the first is conventionally the event's
/// signature hash) and data.
pub fn emit_raw(topics: &[Hash], data: &[u8]) {
    sys::emit_event(topics, data)
}

/// The raw input of this call.
pub fn input() -> Vec<u8> {
    sys::input()
}

/// Sets this call's return data.
pub fn set_output(data: &[u8]) {
    sys::output(data)
}

/// Ends the call, undoing its changes, with `data` as its revert data.
pub fn revert_raw(data: &[u8]) -> ! {
    sys::revert(data)
}

/// Ends the call, undoing its changes, with `error` as an encoded [`Revert`].
pub fn revert<E: ContractError + ?Sized>(error: &E) -> ! {
    sys::revert(&error.to_revert().encode())
}

/// Reads a storage value of this contract.
pub fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
    sys::storage_read(key)
}

/// Writes a storage value of this contract.
pub fn storage_set(key: &[u8], value: &[u8]) {
    sys::storage_write(key, value)
}

/// Removes a storage value of this contract.
pub fn storage_remove(key: &[u8]) {
    sys::storage_remove(key)
}

/// How a call to another contract did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The callee reverted; holds its revert data (see [`CallError::revert`]).
    Reverted(Vec<u8>),
    /// The callee failed (trap, out of gas, no code, reentrancy, depth, value): its changes are
    /// undone and no data comes back.
    Failed,
    /// It returned data that does not decode as the expected type.
    BadOutput,
}

impl CallError {
    /// The callee's [`Revert`], if it reverted with one.
    pub fn revert(&self) -> Option<Revert> {
        match self {
            CallError::Reverted(data) => Revert::decode_all(&mut data.as_slice()).ok(),
            _ => None,
        }
    }
}

/// Calls another contract with `value` and at most `gas`, returning its raw output.
pub fn call_raw(
    to: &Address,
    value: Balance,
    input: &[u8],
    gas: u64,
) -> Result<Vec<u8>, CallError> {
    match sys::call(to, value, input, gas) {
        (0, output) => Ok(output),
        (1, data) => Err(CallError::Reverted(data)),
        _ => Err(CallError::Failed),
    }
}

/// Calls another contract and decodes its output as `R`.
pub fn call<R: Decode>(
    to: &Address,
    value: Balance,
    input: &[u8],
    gas: u64,
) -> Result<R, CallError> {
    let output = call_raw(to, value, input, gas)?;
    R::decode_all(&mut output.as_slice()).map_err(|_| CallError::BadOutput)
}
