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
    /// The rules of native staking. A spec written before they existed gets the defaults.
    #[cfg_attr(feature = "serde", serde(default))]
    pub staking: StakingParams,
    /// The lowest gas price a transaction may offer, in smallest units per gas. Admission and
    /// block validity refuse a lower one, so that no transaction is free; a dev chain may set
    /// it to 0. A spec written before it existed reads 0.
    #[cfg_attr(feature = "serde", serde(default))]
    pub min_gas_price: Balance,
}

/// The parameters of native staking: who may validate, how rewards are paid and how
/// equivocation is punished. Heights and periods are in blocks; shares are in basis points
/// (1/10,000). The runtime checks them at genesis (for example, evidence must expire before the
/// stake it could slash has finished unbonding) and keeps them in the state.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct StakingParams {
    /// The least stake (self-bond plus delegations) a validator needs to be chosen for an epoch.
    pub min_validator_stake: Balance,
    /// The most validators in an epoch's set (K): the top K by stake are chosen.
    pub max_validators: u16,
    /// Blocks between an unbond and the withdrawal of its tokens. Until then the tokens earn
    /// nothing and can still be slashed.
    pub unbonding_period: u64,
    /// The oldest offence, in blocks before the including block, that evidence may prove.
    /// At most `unbonding_period - epoch_length`, so that stake which backed an offence is still
    /// unbonding, and slashable, whenever its evidence can land.
    pub evidence_max_age: u64,
    /// Tokens minted by every block, paid with the block's fees to its proposer and voters.
    pub block_reward: Balance,
    /// The proposer's share of a block's reward and fees, in basis points; the rest goes to the
    /// validators whose precommits for the parent the block carries, by voting power.
    pub proposer_bonus_bps: u16,
    /// The share of an equivocating validator's stake (bonded and still unbonding) that is
    /// burnt, in basis points.
    pub slash_fraction_bps: u16,
}

/// 10^18: the smallest units in one token, for readable defaults.
const TOKEN: Balance = 1_000_000_000_000_000_000;

impl Default for StakingParams {
    /// Parameters for a development chain: one token to validate, 100 validators, unbonding in
    /// 10,000 blocks, evidence for 5,000 blocks, one token per block, a 5% proposer bonus, 5%
    /// slashed for equivocation.
    fn default() -> Self {
        StakingParams {
            min_validator_stake: TOKEN,
            max_validators: 100,
            unbonding_period: 10_000,
            evidence_max_age: 5_000,
            block_reward: TOKEN,
            proposer_bonus_bps: 500,
            slash_fraction_bps: 500,
        }
    }
}

impl ChainSpec {
    /// blake3 of the spec's encoding.
    pub fn hash(&self) -> Hash {
        blake3(&self.encode())
    }
}
