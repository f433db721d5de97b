//! The types that cross a boundary in Altan: between the runtime and the node, between nodes, and
//! between a client and the chain.
//!
//! Everything here is `no_std` + `alloc` so that contracts' tooling and light clients can use the
//! same definitions as validators. Every type that is hashed, stored or sent has exactly one
//! SCALE encoding; the golden vectors in `tests/it/golden.rs` make any change of format a visible
//! decision rather than an accident.
//!
//! Cryptography follows DESIGN.md: secp256k1 through k256 with 65-byte recoverable low-S
//! signatures and Ethereum-style addresses, blake3 for every identifier and Merkle node, and a
//! domain tag plus the chain id in every signed payload.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod address;
mod block;
mod chain_spec;
mod consensus;
mod crypto;
mod hash;
pub mod limits;
pub mod merkle;
mod transaction;

pub use address::{Address, AddressParseError};
pub use block::{Block, Event, ExecutionStatus, FailureReason, Header, Receipt, StakingFailure};
pub use chain_spec::{ChainSpec, GenesisAccount, GenesisValidator, StakingParams};
pub use consensus::{
    Certificate, CertificateError, CommitSignature, Evidence, EvidenceError, EvidencePart, Offence,
    Proposal, SignedProposal, SignedVote, Validator, ValidatorSet, Vote, VoteKind,
};
pub use crypto::{PublicKey, SecretKey, Signature, SignatureError, keccak256};
pub use hash::{Hash, HexError, blake3, blake3_tagged};
pub use transaction::{Action, SignedTransaction, StakingAction, Transaction};

/// An amount of the native token, in its smallest unit.
pub type Balance = u128;
/// Units of execution cost.
pub type Gas = u64;
/// A block's height; genesis is height 0.
pub type Height = u64;
/// Identifies a chain; it is part of every signed payload so that a signature for one chain is
/// worthless on another.
pub type ChainId = u64;
/// A per-account counter that orders an account's transactions and prevents replay.
pub type Nonce = u64;

/// Domain tags: the first bytes of every hashed or signed payload of a given kind, so that a
/// signature or hash made for one purpose can never be taken for another.
pub mod domain {
    /// A transaction's signing payload.
    pub const TRANSACTION: &[u8] = b"altan/tx/v1";
    /// A consensus vote's signing payload.
    pub const VOTE: &[u8] = b"altan/vote/v1";
    /// A consensus proposal's signing payload.
    pub const PROPOSAL: &[u8] = b"altan/proposal/v1";
    /// The identifier of a piece of equivocation evidence.
    pub const EVIDENCE: &[u8] = b"altan/evidence/v1";
    /// The hash that picks the leader of a (height, round) from the epoch's seed.
    pub const LEADER: &[u8] = b"altan/leader/v1";
    /// The address of a deployed contract.
    pub const CONTRACT_ADDRESS: &[u8] = b"altan/contract-address/v1";
}
