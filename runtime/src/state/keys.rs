//! The layout of keys in the state. Every key starts with a one-byte tag naming its kind, so
//! that no two kinds can collide and a reader of a raw key knows what it is.

use altan_primitives::{Address, Balance, Hash, Nonce};
use parity_scale_codec::{Decode, Encode};

/// Kinds of state entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StateKey {
    /// `0x01 || address` → [`Account`].
    Account = 1,
    /// `0x02 || code hash` → the Wasm module's bytes.
    Code = 2,
    /// `0x03 || contract address || key` → a contract's storage value.
    Storage = 3,
    /// `0x04 || name` → chain bookkeeping written by the runtime itself.
    System = 4,
}

impl StateKey {
    /// The key of an account.
    pub fn account(address: &Address) -> Vec<u8> {
        Self::prefixed(StateKey::Account, &[address.as_bytes()])
    }

    /// The key of a code blob.
    pub fn code(code_hash: &Hash) -> Vec<u8> {
        Self::prefixed(StateKey::Code, &[code_hash.as_bytes()])
    }

    /// The key of a contract storage slot.
    pub fn storage(contract: &Address, key: &[u8]) -> Vec<u8> {
        Self::prefixed(StateKey::Storage, &[contract.as_bytes(), key])
    }

    /// The key of a system record.
    pub fn system(name: &[u8]) -> Vec<u8> {
        Self::prefixed(StateKey::System, &[name])
    }

    /// The key of a native staking record: `0x04 || "staking/" || kind || parts`, a system
    /// record. Each kind is followed by parts of one fixed length (addresses, big-endian epochs,
    /// consensus keys), so no two records can share a key. The kinds are listed in the runtime's
    /// `staking` module.
    pub fn staking(kind: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len().saturating_add(2));
        all.push(b"staking/");
        all.push(kind);
        all.extend_from_slice(parts);
        Self::prefixed(StateKey::System, &all)
    }

    fn prefixed(tag: StateKey, parts: &[&[u8]]) -> Vec<u8> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>().saturating_add(1);
        let mut key = Vec::with_capacity(len);
        key.push(tag as u8);
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }
}

/// An account: externally owned (no code) or a contract.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Account {
    /// The next nonce the account's transactions must carry.
    pub nonce: Nonce,
    /// Its native balance.
    pub balance: Balance,
    /// For a contract, the hash of its code.
    pub code_hash: Option<Hash>,
}
