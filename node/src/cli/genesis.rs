//! `altan genesis`: a chain spec for N validators together with each validator's data directory
//! (consensus key and network key), so that a devnet starts with one `altan run` per directory.
//!
//! The network keys are created here rather than on a node's first start so that every peer id,
//! and with it every bootnode address, is known before any node runs (a compose file or a test
//! harness can write them down in advance).

use std::fs;
use std::path::{Path, PathBuf};

use altan_primitives::{
    Balance, ChainId, ChainSpec, Gas, GenesisAccount, GenesisValidator, SecretKey, StakingParams,
};
use altan_runtime::exec::Runtime;
use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use crate::dev::{DEV_ACCOUNTS, DEV_BALANCE, DEV_BLOCK_GAS_LIMIT, DEV_STAKE, dev_account_key};
use crate::keys::{KeyStore, generate};
use crate::network::{NETWORK_KEY_FILE, load_or_create_key};

/// The spec's file name in the output directory.
pub const SPEC_FILE: &str = "spec.json";
/// The name under which each validator's consensus key is stored in its key directory.
pub const VALIDATOR_KEY_NAME: &str = "validator";
/// The key directory's name inside a validator's data directory.
pub const KEYS_DIR: &str = "keys";
/// The commission every genesis validator charges, in basis points (10%).
pub const GENESIS_COMMISSION_BPS: u16 = 1_000;

/// `altan genesis` options.
#[derive(Debug, Clone, Args)]
pub struct GenesisArgs {
    /// How many validators, each with an equal stake.
    #[arg(long)]
    pub validators: usize,
    /// The output directory: `spec.json` and `validator-<i>/` for each validator.
    #[arg(long)]
    pub out: PathBuf,
    /// The chain's name.
    #[arg(long, default_value = "altan-devnet")]
    pub name: String,
    /// The chain id.
    #[arg(long, default_value_t = 1338)]
    pub chain_id: ChainId,
    /// Blocks per epoch.
    #[arg(long, default_value_t = 100)]
    pub epoch_length: u64,
    /// Each validator's self-bonded stake, in the smallest unit.
    #[arg(long, default_value_t = DEV_STAKE)]
    pub stake: Balance,
    /// The most gas a block may use.
    #[arg(long, default_value_t = DEV_BLOCK_GAS_LIMIT)]
    pub block_gas_limit: Gas,
    /// The lowest gas price a transaction may offer, in the smallest unit per gas. Above 0, no
    /// transaction is free: an unfunded key cannot send one.
    #[arg(long, default_value_t = 1)]
    pub min_gas_price: Balance,
    /// The genesis block's timestamp in ms since the Unix epoch (default: now).
    #[arg(long)]
    pub genesis_time_ms: Option<u64>,
    /// Leave out the prefunded dev accounts (dev0..dev9, whose keys are public).
    #[arg(long)]
    pub no_dev_accounts: bool,
    /// Replace an existing spec and the validator directories this run writes, deleting their
    /// keys and chain data.
    #[arg(long)]
    pub force: bool,
}

/// What `altan genesis` created, as printed with `--json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisReport {
    /// The spec file.
    pub spec: PathBuf,
    /// The chain id.
    pub chain_id: ChainId,
    /// The chain's name.
    pub name: String,
    /// The validators, in the spec's order.
    pub validators: Vec<ValidatorReport>,
}

/// One validator of a [`GenesisReport`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorReport {
    /// Its position in the spec.
    pub index: usize,
    /// Its account address (also its consensus key's address).
    pub address: altan_primitives::Address,
    /// Its consensus public key.
    pub consensus_key: altan_primitives::PublicKey,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// The data directory for `altan run --data-dir`.
    pub data_dir: PathBuf,
    /// The key directory for `altan run --keys-dir` (the key is named `validator`).
    pub keys_dir: PathBuf,
}

/// A validator's data directory under `out`.
pub fn validator_dir(out: &Path, index: usize) -> PathBuf {
    out.join(format!("validator-{index}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The staking parameters: the defaults, refused with the limit named when the epoch length
/// leaves evidence no time to land before the stake it proves against has unbonded.
fn staking_params(epoch_length: u64) -> anyhow::Result<StakingParams> {
    let params = StakingParams::default();
    let longest = params.unbonding_period.saturating_sub(params.evidence_max_age);
    if epoch_length > longest {
        bail!(
            "--epoch-length {epoch_length} is too long for the default staking parameters: \
             evidence_max_age ({}) + epoch_length must not exceed unbonding_period ({}), so an \
             epoch may be at most {longest} blocks",
            params.evidence_max_age,
            params.unbonding_period,
        );
    }
    Ok(params)
}

fn build_spec(args: &GenesisArgs, keys: &[SecretKey]) -> anyhow::Result<ChainSpec> {
    let accounts = if args.no_dev_accounts {
        Vec::new()
    } else {
        (0..DEV_ACCOUNTS)
            .map(|i| GenesisAccount { address: dev_account_key(i).address(), balance: DEV_BALANCE })
            .collect()
    };
    let validators = keys
        .iter()
        .map(|key| GenesisValidator {
            address: key.address(),
            consensus_key: key.public_key(),
            stake: args.stake,
            commission_bps: GENESIS_COMMISSION_BPS,
        })
        .collect();
    let spec = ChainSpec {
        name: args.name.clone(),
        chain_id: args.chain_id,
        genesis_time_ms: args.genesis_time_ms.unwrap_or_else(now_ms),
        block_gas_limit: args.block_gas_limit,
        epoch_length: args.epoch_length,
        accounts,
        validators,
        staking: staking_params(args.epoch_length)?,
        min_gas_price: args.min_gas_price,
    };
    Runtime::genesis(&spec).context("the runtime refuses this genesis")?;
    Ok(spec)
}

/// Refuses to replace earlier output unless `--force`; with it, deletes what this run rewrites.
fn clear_output(args: &GenesisArgs) -> anyhow::Result<()> {
    let spec_path = args.out.join(SPEC_FILE);
    let dirs: Vec<PathBuf> = (0..args.validators).map(|i| validator_dir(&args.out, i)).collect();
    let existing: Vec<&Path> = std::iter::once(spec_path.as_path())
        .chain(dirs.iter().map(PathBuf::as_path))
        .filter(|path| path.exists())
        .collect();
    let Some(first) = existing.first() else { return Ok(()) };
    if !args.force {
        bail!(
            "{} exists; pass --force to replace it and the validator directories",
            first.display()
        );
    }
    for path in existing {
        let removed = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Creates the spec and the validators' directories; the spec is written last, through a
/// rename, so that a spec file on disk always comes with its validators' keys.
pub fn create(args: &GenesisArgs) -> anyhow::Result<GenesisReport> {
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let keys: Vec<SecretKey> = (0..args.validators).map(|_| generate()).collect();
    let spec = build_spec(args, &keys)?;
    clear_output(args)?;

    let mut validators = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let data_dir = validator_dir(&args.out, index);
        let keys_dir = data_dir.join(KEYS_DIR);
        KeyStore::new(&keys_dir).save(VALIDATOR_KEY_NAME, key)?;
        let network_key = load_or_create_key(&data_dir)
            .with_context(|| format!("creating {}", data_dir.join(NETWORK_KEY_FILE).display()))?;
        validators.push(ValidatorReport {
            index,
            address: key.address(),
            consensus_key: key.public_key(),
            peer_id: network_key.public().to_peer_id().to_string(),
            data_dir,
            keys_dir,
        });
    }

    let spec_path = args.out.join(SPEC_FILE);
    let partial = args.out.join(format!("{SPEC_FILE}.partial"));
    fs::write(&partial, serde_json::to_string_pretty(&spec)?)
        .with_context(|| format!("writing {}", partial.display()))?;
    fs::rename(&partial, &spec_path).with_context(|| format!("writing {}", spec_path.display()))?;

    Ok(GenesisReport { spec: spec_path, chain_id: spec.chain_id, name: spec.name, validators })
}

/// `altan genesis`.
#[allow(clippy::print_stdout)]
pub fn run(args: GenesisArgs, json: bool) -> anyhow::Result<()> {
    let report = create(&args)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let spec = report.spec.display();
    println!(
        "Chain {} (chain id {}) with {} validators: {spec}",
        report.name,
        report.chain_id,
        report.validators.len()
    );
    for validator in &report.validators {
        println!();
        println!("  validator {}  {}", validator.index, validator.address);
        println!("    peer id  {}", validator.peer_id);
        println!(
            "    altan run --chain {spec} --data-dir {} --keys-dir {} --validator-key {VALIDATOR_KEY_NAME}",
            validator.data_dir.display(),
            validator.keys_dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn args(out: &Path, validators: usize) -> GenesisArgs {
        GenesisArgs {
            validators,
            out: out.to_path_buf(),
            name: "altan-devnet".into(),
            chain_id: 1338,
            epoch_length: 100,
            stake: DEV_STAKE,
            block_gas_limit: DEV_BLOCK_GAS_LIMIT,
            min_gas_price: 1,
            genesis_time_ms: Some(1_700_000_000_000),
            no_dev_accounts: false,
            force: false,
        }
    }

    fn load_spec(path: &Path) -> ChainSpec {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn creates_a_spec_whose_validators_have_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("devnet");
        let report = create(&args(&out, 4)).unwrap();

        let spec = load_spec(&out.join(SPEC_FILE));
        assert_eq!(report.spec, out.join(SPEC_FILE));
        assert_eq!((spec.name.as_str(), spec.chain_id), ("altan-devnet", 1338));
        assert_eq!(spec.genesis_time_ms, 1_700_000_000_000);
        assert_eq!(spec.validators.len(), 4);
        assert_eq!(report.validators.len(), 4);
        Runtime::genesis(&spec).unwrap();

        let mut peers = std::collections::BTreeSet::new();
        for (index, (validator, entry)) in
            report.validators.iter().zip(&spec.validators).enumerate()
        {
            assert_eq!(validator.index, index);
            assert_eq!(validator.data_dir, validator_dir(&out, index));
            let key = KeyStore::new(&validator.keys_dir).load(VALIDATOR_KEY_NAME).unwrap();
            assert_eq!(key.public_key(), entry.consensus_key);
            assert_eq!(key.address(), entry.address);
            assert_eq!((entry.stake, entry.commission_bps), (DEV_STAKE, GENESIS_COMMISSION_BPS));
            assert_eq!(validator.consensus_key, entry.consensus_key);

            let key_file = validator.keys_dir.join(format!("{VALIDATOR_KEY_NAME}.json"));
            assert_eq!(fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
            let network = load_or_create_key(&validator.data_dir).unwrap();
            assert_eq!(network.public().to_peer_id().to_string(), validator.peer_id);
            peers.insert(validator.peer_id.clone());
        }
        assert_eq!(peers.len(), 4, "every validator has its own peer id");

        let funded: Vec<_> = spec.accounts.iter().map(|a| (a.address, a.balance)).collect();
        let dev: Vec<_> =
            (0..DEV_ACCOUNTS).map(|i| (dev_account_key(i).address(), DEV_BALANCE)).collect();
        assert_eq!(funded, dev);

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["chainId"], 1338);
        assert_eq!(json["validators"][3]["index"], 3);
        for field in ["address", "consensusKey", "peerId", "dataDir", "keysDir"] {
            assert!(json["validators"][0][field].is_string(), "{field} in {json}");
        }
    }

    #[test]
    fn refuses_to_overwrite_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let first = create(&args(dir.path(), 2)).unwrap();
        let error = create(&args(dir.path(), 2)).unwrap_err();
        assert!(error.to_string().contains("--force"), "{error}");
        assert_eq!(load_spec(&first.spec).validators[0].address, first.validators[0].address);

        let forced = create(&GenesisArgs { force: true, ..args(dir.path(), 2) }).unwrap();
        let spec = load_spec(&forced.spec);
        assert_ne!(forced.validators[0].address, first.validators[0].address);
        assert_eq!(spec.validators[0].address, forced.validators[0].address);
        let key = KeyStore::new(&forced.validators[1].keys_dir).load(VALIDATOR_KEY_NAME).unwrap();
        assert_eq!(key.public_key(), spec.validators[1].consensus_key);
    }

    #[test]
    fn leftover_validator_directories_are_refused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(validator_dir(dir.path(), 1)).unwrap();
        let error = create(&args(dir.path(), 2)).unwrap_err();
        assert!(error.to_string().contains("validator-1"), "{error}");
        assert!(!dir.path().join(SPEC_FILE).exists());
    }

    #[test]
    fn bad_parameters_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("devnet");

        let error = create(&GenesisArgs { epoch_length: 6_000, ..args(&out, 2) }).unwrap_err();
        assert!(error.to_string().contains("at most 5000 blocks"), "{error}");
        let error = create(&args(&out, 0)).unwrap_err();
        assert!(error.to_string().contains("at least 1"), "{error}");
        let error = create(&GenesisArgs { stake: 1, ..args(&out, 2) }).unwrap_err();
        assert!(format!("{error:#}").contains("minimum"), "{error:#}");
        assert!(!out.exists());

        let report = create(&GenesisArgs { no_dev_accounts: true, ..args(&out, 1) }).unwrap();
        assert!(load_spec(&report.spec).accounts.is_empty());
    }
}
