//! The chain spec: everything a node needs to build the genesis state.

use alloc::string::String;
use alloc::vec::Vec;

use parity_scale_codec::{Decode, Encode};

use crate::{Address, Balance, ChainId, Gas, Hash, PublicKey, blake3};

/// A prefunded account at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct GenesisAccount {
    /// The account.
    pub address: Address,
    /// Its balance.
    pub balance: Balance,
}

/// A validator at genesis, with its self-bonded stake.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct GenesisValidator {
    /// The validator's account.
    pub address: Address,
    /// Its consensus key.
    pub consensus_key: PublicKey,
    /// Its bonded stake.
    pub stake: Balance,
    /// Its commission in basis points.
    pub commission_bps: u16,
}

/// The parameters and initial state of a chain. Every node of a chain has the same spec; its hash
/// identifies the chain's genesis.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ChainSpec {
    /// A human-readable name.
    pub name: String,
    /// The chain id every signed payload carries.
    pub chain_id: ChainId,
    /// The genesis block's timestamp, in ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// The most gas a block may use.
    pub block_gas_limit: Gas,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// Prefunded accounts.
    pub accounts: Vec<GenesisAccount>,
    /// The first epoch's validators.
    pub validators: Vec<GenesisValidator>,
}

impl ChainSpec {
    /// blake3 of the spec's encoding.
    pub fn hash(&self) -> Hash {
        blake3(&self.encode())
    }
}
