//! The `altan` command line.
//!
//! Every command prints readable text by default and one JSON document with `--json`, so that
//! scripts never parse prose. Commands that talk to a node take `--rpc` (default
//! `http://127.0.0.1:9944`, or `$ALTAN_RPC`).

mod attack;
mod bench;
mod commands;
mod genesis;
mod node;
mod rpc_limits;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::DEFAULT_RPC;
pub use rpc_limits::RpcLimits;

/// Altan: a proof-of-stake chain with WebAssembly contracts.
#[derive(Debug, Parser)]
#[command(name = "altan", version, about, propagate_version = true)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Where to reach a node.
#[derive(Debug, Clone, Args)]
pub struct RpcArgs {
    /// The node's JSON-RPC URL.
    #[arg(long, env = "ALTAN_RPC", default_value = DEFAULT_RPC)]
    pub rpc: String,
}

/// Which key signs.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The signing key: a name in the key directory, or dev0..dev9 on a dev chain.
    #[arg(long)]
    pub from: String,
    /// The key directory (default $ALTAN_HOME/keys or ~/.altan/keys).
    #[arg(long, env = "ALTAN_KEYS")]
    pub keys_dir: Option<PathBuf>,
    /// The gas limit (estimated by a dry run if absent).
    #[arg(long)]
    pub gas_limit: Option<u64>,
    /// The gas price.
    #[arg(long, default_value_t = 1)]
    pub gas_price: u128,
    /// Return once the node admits the transaction instead of waiting for its receipt.
    #[arg(long)]
    pub no_wait: bool,
}

/// Options every running node takes.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Where the chain's data lives.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The JSON-RPC address (HTTP and WebSocket).
    #[arg(long, default_value = "127.0.0.1:9944")]
    pub rpc_addr: SocketAddr,
    /// The Prometheus metrics address (GET /metrics).
    #[arg(long, default_value = "127.0.0.1:9615")]
    pub metrics_addr: SocketAddr,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// Transactions the mempool keeps.
    #[arg(long, default_value_t = 100_000)]
    pub mempool_size: usize,
    /// RPC limits.
    #[command(flatten)]
    pub limits: RpcLimits,
}

/// Peer-to-peer and consensus options of `altan run`.
#[derive(Debug, Clone, Args)]
pub struct P2pArgs {
    /// Where to listen for peers (port 0 picks a free port).
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/30333")]
    pub p2p_listen: crate::network::Multiaddr,
    /// A peer to start from, ending in /p2p/<peer id>; repeat for several.
    #[arg(long = "bootnode")]
    pub bootnodes: Vec<crate::network::Multiaddr>,
    /// The longest a leader waits for transactions before it proposes an empty block, in ms.
    #[arg(long, default_value_t = 1_000)]
    pub empty_block_interval: u64,
    /// The message delay the consensus timeouts are sized for, in ms (every validator of a
    /// chain should use the same).
    #[arg(long, default_value_t = 100)]
    pub consensus_delay: u64,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a dev chain: one validator, prefunded well-known accounts, blocks on demand.
    Dev {
        /// Node options (the data directory is temporary unless given).
        #[command(flatten)]
        node: NodeArgs,
        /// Make a block every so many milliseconds instead of as soon as transactions arrive.
        #[arg(long)]
        block_time: Option<u64>,
    },
    /// Run a node of the chain in a spec file: a validator with `--validator-key`, otherwise a
    /// full node that follows the chain and serves RPC. Peers are found from `--bootnode`s.
    Run {
        /// Node options.
        #[command(flatten)]
        node: NodeArgs,
        /// Peer-to-peer options.
        #[command(flatten)]
        p2p: P2pArgs,
        /// The chain spec (JSON).
        #[arg(long)]
        chain: PathBuf,
        /// The validator's consensus key (a key name in `--keys-dir`). The node signs
        /// consensus messages whenever the key is in the current epoch's validator set.
        #[arg(long)]
        validator_key: Option<String>,
        /// The validator's account address (default: the consensus key's address).
        #[arg(long)]
        validator_account: Option<altan_primitives::Address>,
        /// The key directory.
        #[arg(long, env = "ALTAN_KEYS")]
        keys_dir: Option<PathBuf>,
    },
    /// Create a chain spec with N validators: their keys, network identities and data
    /// directories, and prefunded accounts.
    Genesis(genesis::GenesisArgs),
    /// Manage keys.
    Keys {
        /// The key directory.
        #[arg(long, env = "ALTAN_KEYS", global = true)]
        keys_dir: Option<PathBuf>,
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Send native tokens.
    Transfer {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// The signer.
        #[command(flatten)]
        sign: SignArgs,
        /// The recipient.
        #[arg(long)]
        to: altan_primitives::Address,
        /// The amount, in the smallest unit.
        #[arg(long)]
        amount: u128,
    },
    /// Deploy a contract; constructor arguments as name=value.
    Deploy {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// The signer.
        #[command(flatten)]
        sign: SignArgs,
        /// The contract's .wasm file.
        wasm: PathBuf,
        /// Constructor arguments, name=value.
        args: Vec<String>,
        /// Value sent to the contract.
        #[arg(long, default_value_t = 0)]
        value: u128,
        /// The address salt (default: derived from the sender's nonce).
        #[arg(long)]
        salt: Option<altan_primitives::Hash>,
    },
    /// Call a contract method in a transaction; arguments as name=value.
    Call {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// The signer.
        #[command(flatten)]
        sign: SignArgs,
        /// The contract.
        contract: altan_primitives::Address,
        /// The method.
        method: String,
        /// Arguments, name=value.
        args: Vec<String>,
        /// Value sent with the call.
        #[arg(long, default_value_t = 0)]
        value: u128,
    },
    /// Call a contract method read-only; arguments as name=value.
    Query {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// The contract.
        contract: altan_primitives::Address,
        /// The method.
        method: String,
        /// Arguments, name=value.
        args: Vec<String>,
        /// The caller the contract sees.
        #[arg(long)]
        caller: Option<altan_primitives::Address>,
    },
    /// An account's balance and nonce.
    Account {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// The address (or a key name).
        address: String,
        /// The key directory.
        #[arg(long, env = "ALTAN_KEYS")]
        keys_dir: Option<PathBuf>,
    },
    /// A block: by number, hash, "latest" (default) or "final".
    Block {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// Which block.
        #[arg(default_value = "latest")]
        at: String,
    },
    /// A transaction.
    Tx {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// Its id.
        id: altan_primitives::Hash,
    },
    /// A transaction's receipt, with events decoded when the contract describes them.
    Receipt {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// The transaction's id.
        id: altan_primitives::Hash,
    },
    /// A contract's events, decoded.
    Events {
        /// The node.
        #[command(flatten)]
        rpc: RpcArgs,
        /// The contract.
        contract: altan_primitives::Address,
        /// First block.
        #[arg(long)]
        from_block: Option<u64>,
        /// Last block.
        #[arg(long)]
        to_block: Option<u64>,
    },
    /// Load a node with pre-signed token transfers and report throughput and latency.
    Bench(bench::BenchArgs),
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key.
    New {
        /// Its name.
        name: String,
    },
    /// Import a secret key (hex, read from stdin unless --secret is given).
    Import {
        /// Its name.
        name: String,
        /// The secret key in hex.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Show a key's address and public key.
    Show {
        /// Its name (or dev0..dev9).
        name: String,
        /// Also print the secret key.
        #[arg(long)]
        reveal: bool,
    },
    /// List the keys.
    List,
}

/// An error for people: a node's JSON-RPC error as "message (code N)", other errors with their
/// causes.
pub fn describe_error(error: &anyhow::Error) -> String {
    if let Some(jsonrpsee::core::ClientError::Call(object)) =
        error.downcast_ref::<jsonrpsee::core::ClientError>()
    {
        return format!("{} (code {})", object.message(), object.code());
    }
    format!("{error:#}")
}

/// Runs the command line.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Dev { node, block_time } => node::dev(node, block_time, json).await,
        Command::Run { node, p2p, chain, validator_key, validator_account, keys_dir } => {
            node::run(node, p2p, chain, validator_key, validator_account, keys_dir, json).await
        }
        Command::Genesis(args) => genesis::run(args, json),
        Command::Bench(args) => bench::run(args, json).await,
        other => commands::run(other, json).await,
    }
}
