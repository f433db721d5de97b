//! Reads of the state and what a client sends to run or submit: accounts, storage with proofs,
//! queries, dry runs, event filters, batch submission results.

use altan_primitives::{Address, Event, Hash};
use serde::{Deserialize, Serialize};

use super::{Amount, BlockId, EventJson, HexBytes, StatusJson};

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountJson {
    /// The address.
    pub address: Address,
    /// The balance.
    pub balance: Amount,
    /// The next nonce as of the block read.
    pub nonce: u64,
    /// The next nonce counting ready pending transactions (for the latest block only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_nonce: Option<u64>,
    /// A contract's code hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<Hash>,
    /// The height read at.
    pub block_height: u64,
}

/// A storage value with its Merkle proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageJson {
    /// The contract.
    pub contract: Address,
    /// The storage key.
    pub key: HexBytes,
    /// The value, or null when absent (the proof then proves absence).
    pub value: Option<HexBytes>,
    /// The SCALE-encoded proof (`StateProof`), checked with the state key
    /// `0x03 ‖ contract ‖ key` against `stateRoot`.
    pub proof: HexBytes,
    /// The state root it proves against.
    pub state_root: Hash,
    /// The height read at.
    pub block_height: u64,
}

/// A read-only call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryRequest {
    /// The contract.
    pub contract: Address,
    /// The input (selector and SCALE arguments).
    pub input: HexBytes,
    /// The caller the contract sees (zero address if absent).
    #[serde(default)]
    pub from: Option<Address>,
    /// Gas available (default and maximum: the block gas limit).
    #[serde(default)]
    pub gas: Option<u64>,
    /// The block whose state to read (default latest).
    #[serde(default)]
    pub at: Option<BlockId>,
}

/// An execution's outcome without a block: query, dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeJson {
    /// How it ended.
    pub status: StatusJson,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Gas used.
    pub gas_used: u64,
    /// The return or revert data.
    pub output: HexBytes,
    /// Events it emitted (or would).
    pub events: Vec<EventJson>,
    /// The address a deployment would get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_address: Option<Address>,
}

/// A transaction to dry-run or estimate: the SCALE encoding of an unsigned `Transaction`, or of
/// a `SignedTransaction` (whose sender is then recovered), and the sender for the unsigned case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunRequest {
    /// The sender of an unsigned transaction.
    #[serde(default)]
    pub from: Option<Address>,
    /// SCALE `Transaction` (with `from`) or `SignedTransaction` (without).
    pub transaction: HexBytes,
}

/// An event filter for `chain_getEvents`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventFilter {
    /// Only this contract's events (required unless the range is small; see the reference).
    #[serde(default)]
    pub contract: Option<Address>,
    /// Topics by position; `null` matches anything at that position.
    #[serde(default)]
    pub topics: Vec<Option<Hash>>,
    /// First block (default: 0 with a contract, else `toBlock`).
    #[serde(default)]
    pub from_block: Option<u64>,
    /// Last block (default: latest).
    #[serde(default)]
    pub to_block: Option<u64>,
    /// The most events to return (default and maximum: the server's limit).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl EventFilter {
    /// Whether `event` matches the contract and topics.
    pub fn matches(&self, event: &Event) -> bool {
        self.contract.is_none_or(|c| c == event.contract)
            && self
                .topics
                .iter()
                .enumerate()
                .all(|(i, wanted)| wanted.is_none_or(|wanted| event.topics.get(i) == Some(&wanted)))
    }
}

/// One transaction's admission in a batch: its id, or the error it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitResult {
    /// The id, if admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Hash>,
    /// The error, if refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorJson>,
}

/// An error as data (in batch results).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorJson {
    /// The stable code.
    pub code: i32,
    /// What was wrong.
    pub message: String,
}
