//! Limits of contract execution that contracts themselves can run into. They are protocol
//! constants: the runtime enforces them, and the contract SDK's off-chain test environment enforces
//! the same ones, so a contract that passes its tests does not hit a different limit on chain.

/// The largest input a contract call may carry.
pub const MAX_INPUT: usize = 128 * 1024;
/// The largest output or revert data.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// The largest storage key.
pub const MAX_STORAGE_KEY: usize = 256;
/// The largest storage value.
pub const MAX_STORAGE_VALUE: usize = 64 * 1024;
/// The most topics of one event.
pub const MAX_TOPICS: usize = 4;
/// The most data of one event.
pub const MAX_EVENT_DATA: usize = 16 * 1024;
/// The most events one transaction may emit.
pub const MAX_EVENTS: usize = 256;
/// The most contract calls nested in one transaction, the outermost included.
pub const MAX_CALL_DEPTH: usize = 32;
