//! Blocks, headers, receipts and events.

use alloc::vec::Vec;

use parity_scale_codec::{Decode, Encode};

use crate::{Address, ChainId, Gas, Hash, Height, SignedTransaction, blake3, merkle};

/// A block header. Its hash is the block's id.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Header {
    /// The chain.
    pub chain_id: ChainId,
    /// The height; genesis is 0.
    pub height: Height,
    /// The parent header's hash ([`Hash::ZERO`] for genesis).
    pub parent_hash: Hash,
    /// Milliseconds since the Unix epoch, as the proposer saw it; strictly above the parent's.
    pub timestamp_ms: u64,
    /// The account of the validator that proposed the block.
    pub proposer: Address,
    /// The state root after executing the block.
    pub state_root: Hash,
    /// The Merkle root of the transaction ids.
    pub transactions_root: Hash,
    /// The Merkle root of the receipts' hashes.
    pub receipts_root: Hash,
    /// Gas used by all transactions.
    pub gas_used: Gas,
    /// The most gas the block's transactions may use together.
    pub gas_limit: Gas,
}

impl Header {
    /// The block id: blake3 of the header's SCALE encoding.
    pub fn hash(&self) -> Hash {
        blake3(&self.encode())
    }
}

/// A header and the transactions it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order.
    pub transactions: Vec<SignedTransaction>,
}

impl Block {
    /// The block id.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The Merkle root of the transaction ids, as the header must carry it.
    pub fn compute_transactions_root(transactions: &[SignedTransaction]) -> Hash {
        let ids: Vec<Hash> = transactions.iter().map(SignedTransaction::id).collect();
        merkle::root(&ids)
    }
}

/// An event a contract emitted.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Event {
    /// The contract that emitted it.
    pub contract: Address,
    /// Indexed topics (the first is conventionally the event's signature hash).
    pub topics: Vec<Hash>,
    /// The event's data, as the contract encoded it.
    pub data: Vec<u8>,
}

/// Why execution failed. These are codes, not messages: they are hashed into the receipts root,
/// so they must not carry host detail that could differ between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum FailureReason {
    /// The gas limit was reached.
    OutOfGas,
    /// The contract trapped (unreachable, division by zero, out-of-bounds memory access...).
    Trap,
    /// The Wasm call stack reached its limit.
    StackOverflow,
    /// Contract calls nested deeper than the runtime allows.
    CallDepthExceeded,
    /// A contract called into a contract already on the call stack that does not accept it.
    Reentrancy,
    /// The sender or a contract did not have the value it tried to move.
    InsufficientBalance,
    /// The call's target has no code.
    NoCode,
    /// Deployed code is not a valid Altan contract (see the runtime's validation rules).
    InvalidCode,
    /// A contract already exists at the derived address.
    AddressInUse,
    /// A host call was made with arguments out of bounds or over a limit.
    InvalidHostCall,
    /// The operation is not enabled on this chain.
    Unsupported,
}

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum ExecutionStatus {
    /// It ran to completion and its state changes are kept.
    Success,
    /// The contract reverted; its return data says why. State changes are undone, the fee is not.
    Revert,
    /// Execution failed; state changes are undone, the fee is not.
    Failure(FailureReason),
}

/// The outcome of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Receipt {
    /// The transaction's id.
    pub transaction_id: Hash,
    /// How it ended.
    pub status: ExecutionStatus,
    /// Gas charged (the fee is this times the gas price).
    pub gas_used: Gas,
    /// The returned or revert data.
    pub output: Vec<u8>,
    /// Events, in emission order; empty unless the status is success.
    pub events: Vec<Event>,
    /// The new contract's address, for a successful deploy.
    pub contract_address: Option<Address>,
}

impl Receipt {
    /// blake3 of the receipt's encoding: the leaf of the receipts root.
    pub fn hash(&self) -> Hash {
        blake3(&self.encode())
    }

    /// The Merkle root of the receipts' hashes, as the header must carry it.
    pub fn compute_root(receipts: &[Receipt]) -> Hash {
        let hashes: Vec<Hash> = receipts.iter().map(Receipt::hash).collect();
        merkle::root(&hashes)
    }
}
