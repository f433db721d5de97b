//! The gas schedule and the limits of execution. Every number here is consensus: changing one
//! changes results, so it is a protocol upgrade.
//!
//! One unit of gas is one unit of wasmtime fuel, and wasmtime charges one unit of fuel per Wasm
//! instruction (a few structural ones are free). Host calls and bytes are priced relative to that:
//! a host call costs about what its work costs in instructions, and bytes that every node must keep
//! forever (storage, code) cost far more than bytes that only pass through.

use altan_primitives::Gas;

// The limits a contract can run into are shared with the SDK's test environment.
pub use altan_primitives::limits::{
    MAX_CALL_DEPTH, MAX_EVENT_DATA, MAX_EVENTS, MAX_INPUT, MAX_OUTPUT, MAX_STORAGE_KEY,
    MAX_STORAGE_VALUE, MAX_TOPICS,
};

/// Every transaction: signature recovery, nonce and balance checks, receipt.
pub const TX_BASE: Gas = 5_000;
/// Per byte of the encoded transaction (bandwidth, block space).
pub const TX_BYTE: Gas = 10;
/// Per byte of deployed code: compilation and storing the code forever.
pub const DEPLOY_BYTE: Gas = 200;
/// Every host call, on top of its own price.
pub const HOST_CALL: Gas = 40;
/// Per byte copied between a contract's memory and the host (input, output, hashing).
pub const COPY_BYTE: Gas = 1;
/// A storage read, plus [`STORAGE_READ_BYTE`] per byte of key and value.
pub const STORAGE_READ: Gas = 400;
/// Per byte of key and value read.
pub const STORAGE_READ_BYTE: Gas = 2;
/// A storage write, plus [`STORAGE_WRITE_BYTE`] per byte of key and value.
pub const STORAGE_WRITE: Gas = 2_000;
/// Per byte of key and value written.
pub const STORAGE_WRITE_BYTE: Gas = 30;
/// A storage removal.
pub const STORAGE_REMOVE: Gas = 1_000;
/// An event, plus [`EVENT_TOPIC`] per topic and [`EVENT_BYTE`] per byte of data.
pub const EVENT: Gas = 300;
/// Per event topic.
pub const EVENT_TOPIC: Gas = 100;
/// Per byte of event data.
pub const EVENT_BYTE: Gas = 8;
/// A call to another contract (instantiation), on top of the gas the callee uses.
pub const CALL: Gas = 3_000;
/// A native transfer from a contract, or a balance read.
pub const TRANSFER: Gas = 1_000;
/// A transfer that creates its recipient's account, on top of the transfer's own cost: the
/// account stays in the state for good, so the transfer pays for it (as Ethereum's 25,000).
pub const NEW_ACCOUNT: Gas = 25_000;
/// Reading another account's balance.
pub const BALANCE: Gas = 300;
/// Hashing, plus [`HASH_BYTE`] per byte.
pub const HASH: Gas = 60;
/// Per byte hashed.
pub const HASH_BYTE: Gas = 2;
/// secp256k1 public key recovery.
pub const RECOVER: Gas = 25_000;
/// A staking operation (register, bond, unbond): a few records read and written.
pub const STAKING: Gas = 20_000;
/// A withdrawal: it may visit up to [`MAX_DELEGATIONS`] bonds and [`MAX_UNBONDINGS`]
/// unbondings.
pub const STAKING_WITHDRAW: Gas = 60_000;

/// The largest encoded transaction.
pub const MAX_TX_SIZE: usize = 160 * 1024;
/// The largest contract code.
pub const MAX_CODE_SIZE: usize = 128 * 1024;
/// The most functions a module may define or import.
pub const MAX_FUNCTIONS: u32 = 4_096;
/// The most locals (parameters excluded) one function may declare.
pub const MAX_LOCALS: u32 = 1_024;
/// The most parameters or results of a function type.
pub const MAX_PARAMS: usize = 32;
/// The most globals a module may define.
pub const MAX_GLOBALS: u32 = 256;
/// The most entries a table may have.
pub const MAX_TABLE_ELEMENTS: u32 = 4_096;
/// The most types, exports, data segments or element segments in a module.
pub const MAX_ITEMS: u32 = 1_024;
/// The most a contract's linear memory can grow to (64 pages).
pub const MAX_MEMORY_BYTES: usize = 4 * 1024 * 1024;
/// The most linear memory all the instances of one transaction may hold together.
pub const MAX_TX_MEMORY_BYTES: usize = 32 * 1024 * 1024;
/// The most contract instances one transaction may create (each call creates one).
pub const MAX_INSTANCES: usize = 64;
/// The native stack that Wasm code of one transaction may use, across all nested calls.
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// The most validators one account may bond to at once.
pub const MAX_DELEGATIONS: usize = 32;
/// The most unbondings one account may have in progress (or complete and not withdrawn).
pub const MAX_UNBONDINGS: usize = 32;
/// The most pieces of evidence one block may carry.
pub const MAX_BLOCK_EVIDENCE: usize = 32;

/// `base + per_byte * bytes`, saturating: an absurd size costs more gas than any limit allows.
pub fn cost(base: Gas, per_byte: Gas, bytes: usize) -> Gas {
    let bytes = Gas::try_from(bytes).unwrap_or(Gas::MAX);
    base.saturating_add(per_byte.saturating_mul(bytes))
}
