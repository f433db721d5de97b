//! The chain and the node: parameters, validators and leaders, health, consensus, version, peers.

use altan_primitives::{Address, Hash};
use serde::{Deserialize, Serialize};

use super::Amount;

/// Chain parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfo {
    /// The chain's name.
    pub name: String,
    /// Its id (signed into every transaction).
    pub chain_id: u64,
    /// The genesis block's hash.
    pub genesis_hash: Hash,
    /// The chain spec's hash.
    pub spec_hash: Hash,
    /// The block gas limit.
    pub block_gas_limit: u64,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// The lowest gas price a transaction may offer (a decimal string).
    #[serde(default)]
    pub min_gas_price: Amount,
}

/// A validator of an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorJson {
    /// Its account.
    pub address: Address,
    /// Its consensus key (compressed, hex).
    pub consensus_key: String,
    /// Its voting power: bonded stake.
    pub power: Amount,
}

/// An epoch's validator set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorsJson {
    /// The epoch.
    pub epoch: u64,
    /// The height it was read at.
    pub block_height: u64,
    /// The validators, in the set's canonical order (certificates index into it).
    pub validators: Vec<ValidatorJson>,
    /// The sum of their power.
    pub total_power: Amount,
}

/// The leader of a height's round 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderJson {
    /// The height.
    pub height: u64,
    /// The leader's index in the epoch's set.
    pub index: u16,
    /// The leader's account.
    pub address: Address,
}

/// Node health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthJson {
    /// Whether the node is serving.
    pub ok: bool,
    /// The head's height.
    pub height: u64,
    /// The final head's height.
    pub final_height: u64,
    /// Connected peers.
    pub peers: u32,
    /// Whether the node is catching up.
    pub syncing: bool,
    /// The highest final height a peer has shown (the node's own when it has no peers).
    pub best_seen_height: u64,
    /// Final blocks imported from peers since the node started.
    pub synced_blocks: u64,
    /// Where consensus is, on a node that runs it (`altan run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus: Option<ConsensusJson>,
    /// Transactions in the mempool.
    pub mempool: usize,
}

/// Where a node's consensus is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsensusJson {
    /// The height being decided.
    pub height: u64,
    /// Its round.
    pub round: u32,
    /// Whether this node's key is in the height's validator set.
    pub validating: bool,
}

/// The node's software.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionJson {
    /// The node's version.
    pub version: String,
    /// The host ABI contracts import.
    pub host_abi: String,
    /// The chain spec's name.
    pub chain: String,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerJson {
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Its address.
    pub address: String,
}
