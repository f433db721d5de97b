//! `altan dev` and `altan run`: open the chain, start the engine, serve RPC and metrics, stop on
//! Ctrl-C or SIGTERM (or when the engine stops).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use altan_primitives::{Address, ChainSpec};
use anyhow::Context;
use serde_json::json;
use tracing::info;
use tracing_subscriber::EnvFilter;

use super::{NodeArgs, P2pArgs};
use crate::chain::{Chain, ChainConfig, DataDir, ValidatorKey};
use crate::dev::{DEV_ACCOUNTS, DEV_BALANCE, dev_account_key, dev_spec, dev_validator_key};
use crate::engine::host::{LoneNetwork, TokioHost};
use crate::engine::{self, BlockPacing, EngineConfig, EngineError};
use crate::keys::{KeyStore, default_dir};
use crate::mempool::MempoolConfig;
use crate::metrics::{self, Metrics};
use crate::network::{self, NetworkConfig, load_or_create_key};
use crate::{now_ms, rpc};

const SPEC_FILE: &str = "spec.json";

fn init_logs(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colors only on a terminal: logs written to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A second initialization (tests calling in-process) is harmless to ignore.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// The dev chain's validator votes alone, so its own votes are the whole quorum at once and the
/// vote timeouts this sets never fire; the proposal timeout covers the longest block wait.
const DEV_MESSAGE_DELAY: Duration = Duration::from_millis(100);

/// `--block-time`: a block every interval, or (0 or absent) as soon as a transaction is ready
/// and never an empty one.
fn dev_pacing(block_time_ms: Option<u64>) -> BlockPacing {
    match block_time_ms {
        Some(ms) if ms > 0 => BlockPacing::Every(Duration::from_millis(ms)),
        _ => BlockPacing::Ready { empty_after: None },
    }
}

/// What a started node serves on.
struct Started {
    rpc: std::net::SocketAddr,
    metrics: std::net::SocketAddr,
    handle: jsonrpsee::server::ServerHandle,
}

async fn start(chain: &Arc<Chain>, node: &NodeArgs) -> anyhow::Result<Started> {
    let listener = tokio::net::TcpListener::bind(node.metrics_addr)
        .await
        .with_context(|| format!("binding the metrics address {}", node.metrics_addr))?;
    let metrics_addr = listener.local_addr()?;
    tokio::spawn(metrics::serve(listener, Arc::clone(chain.metrics())));
    let config = node.limits.config(node.rpc_addr);
    let (rpc, handle) = rpc::start(Arc::clone(chain), config)
        .await
        .with_context(|| format!("starting JSON-RPC on {}", node.rpc_addr))?;
    Ok(Started { rpc, metrics: metrics_addr, handle })
}

/// Serves until Ctrl-C or SIGTERM, or until the engine stops (which is an error).
async fn serve(
    started: Started,
    engine: tokio::task::JoinHandle<Result<(), EngineError>>,
) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ended = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
        ended = engine => match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(anyhow::Error::new(error).context("the consensus engine stopped")),
            Err(error) => Err(anyhow::anyhow!("the consensus engine failed: {error}")),
        },
    };
    info!(target: "altan::node", "shutting down");
    let _ = started.handle.stop();
    started.handle.stopped().await;
    ended
}

fn chain_config(node: &NodeArgs, data_dir: &Path, sync_writes: bool) -> ChainConfig {
    ChainConfig {
        data_dir: DataDir::Path(data_dir.to_path_buf()),
        sync_writes,
        mempool: MempoolConfig { max_transactions: node.mempool_size, ..MempoolConfig::default() },
        cache_bytes: 256 << 20,
        free: node.limits.free(),
    }
}

fn load_spec(path: &Path) -> anyhow::Result<ChainSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a chain spec", path.display()))
}

/// `altan dev`.
pub async fn dev(node: NodeArgs, block_time_ms: Option<u64>, json: bool) -> anyhow::Result<()> {
    let started_at = Instant::now();
    init_logs(node.log_json);
    // A temporary directory lives as long as this function: the chain is thrown away at exit.
    let (data_dir, _temporary) = match &node.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temporary = tempfile::Builder::new().prefix("altan-dev-").tempdir()?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    std::fs::create_dir_all(&data_dir)?;
    let spec_path = data_dir.join(SPEC_FILE);
    let spec = if spec_path.exists() {
        load_spec(&spec_path)?
    } else {
        let spec = dev_spec(now_ms());
        std::fs::write(&spec_path, serde_json::to_string_pretty(&spec)?)?;
        spec
    };
    let validator =
        ValidatorKey { key: dev_validator_key(), address: dev_account_key(0).address() };
    // A throwaway chain need not wait for fsync; a kept one does.
    let sync_writes = node.data_dir.is_some();
    let chain = Chain::open(
        spec,
        &chain_config(&node, &data_dir, sync_writes),
        Some(validator),
        Arc::new(Metrics::default()),
    )?;
    let (network, events) = LoneNetwork::new();
    let config = EngineConfig::with_pacing(DEV_MESSAGE_DELAY, dev_pacing(block_time_ms));
    let engine =
        tokio::spawn(engine::run(Arc::clone(&chain), TokioHost::new(), network, events, config));
    let started = start(&chain, &node).await?;
    print_dev_banner(&chain, &started, &data_dir, json, started_at.elapsed());
    serve(started, engine).await
}

#[allow(clippy::print_stdout)]
fn print_dev_banner(
    chain: &Chain,
    started: &Started,
    data_dir: &Path,
    json: bool,
    elapsed: Duration,
) {
    let accounts: Vec<_> = (0..DEV_ACCOUNTS)
        .map(|i| {
            let key = dev_account_key(i);
            json!({
                "name": format!("dev{i}"),
                "address": key.address(),
                "secretKey": format!("0x{}", hex::encode(key.to_bytes())),
            })
        })
        .collect();
    if json {
        let banner = json!({
            "rpc": format!("http://{}", started.rpc),
            "ws": format!("ws://{}", started.rpc),
            "metrics": format!("http://{}/metrics", started.metrics),
            "chainId": chain.spec().chain_id,
            "dataDir": data_dir,
            "accounts": accounts,
            "readyMs": elapsed.as_millis() as u64,
        });
        println!("{banner}");
        return;
    }
    println!(
        "Altan dev chain (chain id {}) ready in {} ms",
        chain.spec().chain_id,
        elapsed.as_millis()
    );
    println!();
    println!("  JSON-RPC   http://{}  (WebSocket: ws://{})", started.rpc, started.rpc);
    println!("  Metrics    http://{}/metrics", started.metrics);
    println!("  Data       {}", data_dir.display());
    println!();
    println!(
        "Dev accounts, {} tokens each (keys are public: use them only here; --from devN in the CLI):",
        DEV_BALANCE
    );
    for (i, account) in accounts.iter().enumerate() {
        println!(
            "  dev{i}  {}  {}",
            account["address"].as_str().unwrap_or_default(),
            account["secretKey"].as_str().unwrap_or_default()
        );
    }
    println!();
}

/// `altan run`.
pub async fn run(
    node: NodeArgs,
    p2p: P2pArgs,
    chain_path: PathBuf,
    validator_key: Option<String>,
    validator_account: Option<Address>,
    keys_dir: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    init_logs(node.log_json);
    let spec = load_spec(&chain_path)?;
    let data_dir = node.data_dir.clone().context("altan run needs --data-dir")?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let validator = match validator_key {
        Some(name) => {
            let key = KeyStore::new(keys_dir.unwrap_or_else(default_dir)).load(&name)?;
            // The account rewards go to: the one the genesis spec registered with this key, or
            // the one given, or the key's own.
            let registered = spec
                .validators
                .iter()
                .find(|v| v.consensus_key == key.public_key())
                .map(|v| v.address);
            if registered.is_none() {
                info!(target: "altan::node", key = %key.public_key(),
                    "the key is not a genesis validator; it signs once staking makes it one");
            }
            let address = validator_account.or(registered).unwrap_or_else(|| key.address());
            Some(ValidatorKey { key, address })
        }
        None => None,
    };
    let validator_address = validator.as_ref().map(|v| v.address);
    let chain = Chain::open(
        spec,
        &chain_config(&node, &data_dir, true),
        validator,
        Arc::new(Metrics::default()),
    )?;

    let keypair = load_or_create_key(&data_dir)?;
    let mut network_config =
        NetworkConfig::new(p2p.p2p_listen.clone(), keypair, chain.spec().chain_id);
    network_config.bootnodes = p2p.bootnodes.clone();
    let (network, events) = network::start(network_config).await?;
    let peer_id = network.local_peer_id();
    let p2p_addresses: Vec<String> = network
        .listen_addresses()
        .await?
        .into_iter()
        .map(|address| format!("{address}/p2p/{peer_id}"))
        .collect();
    let engine_config = EngineConfig::new(
        Duration::from_millis(p2p.consensus_delay),
        Duration::from_millis(p2p.empty_block_interval),
    );
    let engine = tokio::spawn(engine::run(
        Arc::clone(&chain),
        TokioHost::new(),
        network,
        events,
        engine_config,
    ));

    let started = start(&chain, &node).await?;
    #[allow(clippy::print_stdout)]
    if json {
        println!(
            "{}",
            json!({
                "rpc": format!("http://{}", started.rpc),
                "metrics": format!("http://{}/metrics", started.metrics),
                "chainId": chain.spec().chain_id,
                "peerId": peer_id.to_string(),
                "p2p": p2p_addresses,
                "validator": validator_address,
            })
        );
    } else {
        println!("Altan node of {} serving JSON-RPC on http://{}", chain.spec().name, started.rpc);
        println!("  peer id  {peer_id}");
        for address in &p2p_addresses {
            println!("  p2p      {address}");
        }
        match validator_address {
            Some(address) => println!("  validator account {address}"),
            None => println!("  following the chain (no validator key)"),
        }
    }
    serve(started, engine).await
}
