//! The dev chain: a spec with prefunded accounts whose keys everyone knows, and one validator.
//!
//! The keys are derived from fixed labels (`blake3("altan dev account <n>")`), so that they are
//! the same on every machine and in every test, and printed when `altan dev` starts. They guard
//! nothing: never send real value to them.

use altan_primitives::{
    Balance, ChainSpec, GenesisAccount, GenesisValidator, SecretKey, StakingParams, blake3,
};

/// The dev chain's id.
pub const DEV_CHAIN_ID: u64 = 1337;
/// Prefunded dev accounts.
pub const DEV_ACCOUNTS: usize = 10;
/// What each dev account holds: a million tokens of 18 decimals.
pub const DEV_BALANCE: Balance = 1_000_000 * 10u128.pow(18);
/// The dev validator's stake.
pub const DEV_STAKE: Balance = 1_000 * 10u128.pow(18);
/// Gas a dev block may use.
pub const DEV_BLOCK_GAS_LIMIT: u64 = 200_000_000;

/// A key derived from a label, the same on every machine: for dev and simulated chains, whose
/// keys everyone may know.
pub fn derived_key(label: &str) -> SecretKey {
    // A blake3 output is a valid secp256k1 scalar but with negligible probability; the counter
    // makes the derivation total anyway.
    (0u32..)
        .find_map(|attempt| {
            let seed = blake3(format!("{label}/{attempt}").as_bytes());
            SecretKey::from_bytes(seed.as_bytes()).ok()
        })
        .unwrap_or_else(|| unreachable!("some attempt yields a valid key"))
}

/// The secret key of dev account `index`.
pub fn dev_account_key(index: usize) -> SecretKey {
    derived_key(&format!("altan dev account {index}"))
}

/// The dev validator's consensus key (its account is dev account 0).
pub fn dev_validator_key() -> SecretKey {
    derived_key("altan dev validator")
}

/// The dev chain's spec, its genesis at `genesis_time_ms`.
pub fn dev_spec(genesis_time_ms: u64) -> ChainSpec {
    ChainSpec {
        name: "altan-dev".into(),
        chain_id: DEV_CHAIN_ID,
        genesis_time_ms,
        block_gas_limit: DEV_BLOCK_GAS_LIMIT,
        epoch_length: 100,
        accounts: (0..DEV_ACCOUNTS)
            .map(|i| GenesisAccount { address: dev_account_key(i).address(), balance: DEV_BALANCE })
            .collect(),
        validators: vec![GenesisValidator {
            address: dev_account_key(0).address(),
            consensus_key: dev_validator_key().public_key(),
            stake: DEV_STAKE,
            commission_bps: 1_000,
        }],
        staking: StakingParams::default(),
        // Free transactions on a throwaway chain are a convenience, set explicitly.
        min_gas_price: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_keys_are_fixed_and_distinct() {
        let first: Vec<_> = (0..DEV_ACCOUNTS).map(|i| dev_account_key(i).address()).collect();
        let again: Vec<_> = (0..DEV_ACCOUNTS).map(|i| dev_account_key(i).address()).collect();
        assert_eq!(first, again);
        let distinct: std::collections::BTreeSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), DEV_ACCOUNTS);
        assert_ne!(dev_validator_key().address(), first[0]);
    }

    #[test]
    fn dev_spec_funds_every_dev_account() {
        let spec = dev_spec(1);
        assert_eq!(spec.accounts.len(), DEV_ACCOUNTS);
        assert!(spec.accounts.iter().all(|a| a.balance == DEV_BALANCE));
        assert_eq!(spec.validators.len(), 1);
    }
}
