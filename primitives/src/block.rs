//! Blocks, headers, receipts and events.

use alloc::vec::Vec;

use parity_scale_codec::{Decode, Encode};

use crate::{
    Address, Certificate, ChainId, Evidence, Gas, Hash, Height, SignedTransaction, blake3, merkle,
};

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
    /// The hash of the parent's commit certificate carried in the block
    /// ([`Block::compute_parent_certificate_hash`]; [`Hash::ZERO`] when there is none).
    pub parent_certificate_hash: Hash,
    /// The Merkle root of the equivocation evidence carried in the block
    /// ([`Block::compute_evidence_root`]).
    pub evidence_root: Hash,
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

/// A header and the body it commits to: transactions, the parent's commit certificate and
/// equivocation evidence. The header holds a root or hash of each part, so the block id (what
/// validators vote on) binds the whole block.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order.
    pub transactions: Vec<SignedTransaction>,
    /// The precommits the proposer collected for the parent block: the voters it rewards. `None`
    /// only at height 1 (genesis is not voted on) and on a chain without validators.
    pub parent_certificate: Option<Certificate>,
    /// Proof of equivocations for the runtime to punish, in the order they are applied.
    pub evidence: Vec<Evidence>,
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

    /// The hash of the parent certificate, as the header must carry it: blake3 of the
    /// certificate's encoding, or [`Hash::ZERO`] when there is none.
    pub fn compute_parent_certificate_hash(certificate: Option<&Certificate>) -> Hash {
        certificate.map_or(Hash::ZERO, |certificate| blake3(&certificate.encode()))
    }

    /// The Merkle root of the evidence's hashes ([`Evidence::hash`]), as the header must carry
    /// it.
    pub fn compute_evidence_root(evidence: &[Evidence]) -> Hash {
        let hashes: Vec<Hash> = evidence.iter().map(Evidence::hash).collect();
        merkle::root(&hashes)
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
    /// A staking operation broke a staking rule.
    Staking(StakingFailure),
}

/// Why a staking operation failed. The receipt carries the code; nothing but the fee and the
/// nonce changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum StakingFailure {
    /// The sender is already registered as a validator (a jailed one cannot register again).
    AlreadyValidator,
    /// Another validator already uses this consensus key.
    ConsensusKeyInUse,
    /// The commission is over 10,000 basis points.
    InvalidCommission,
    /// The account bonded to or unbonded from is not a registered validator.
    NotAValidator,
    /// The validator is jailed for equivocation and takes no new stake.
    ValidatorJailed,
    /// The amount is zero.
    ZeroAmount,
    /// The amount is more than the sender has bonded to the validator.
    InsufficientBond,
    /// The sender already delegates to as many validators as an account may.
    TooManyDelegations,
    /// The sender already has as many unbondings in progress as an account may.
    TooManyUnbondings,
    /// There is no completed unbonding and no reward to withdraw.
    NothingToWithdraw,
    /// The consensus key is not a point on secp256k1.
    InvalidConsensusKey,
    /// An amount or share count would not fit a balance.
    Overflow,
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
