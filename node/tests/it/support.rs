//! What the multi-process tests of this crate share: a chain spec for a few validators with
//! unequal stakes, a real `altan run` process per node, and in-process libp2p peers that talk to
//! those nodes over the real protocols.
//!
//! Each [`Node`] lives in a temporary directory of its own: the spec, its data, its key
//! directory, and `node.log`, where its stderr goes (`ALTAN_TEST_LOG` sets its `RUST_LOG`,
//! default `info`). The process is killed when the `Node` is dropped; if the test is failing,
//! the last [`LOG_TAIL_LINES`] lines of the log are printed first, so a failure shows what the
//! node saw.
//!
//! Every wait is for a condition, bounded, and fails with what it waited for and what it last
//! saw ([`until`]).

use std::fmt::Debug;
use std::fs::{self, File};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use altan_node::engine::wire::{ConsensusGossip, Envelope};
use altan_node::keys::KeyStore;
use altan_node::network::{
    self, Multiaddr, NetworkConfig, NetworkError, NetworkEvent, NetworkHandle, PeerId, Topic,
    Validation,
};
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::{BlockId, HeaderJson, HealthJson, ValidatorsJson};
use altan_primitives::{
    Address, Balance, ChainSpec, GenesisAccount, GenesisValidator, SecretKey, StakingParams,
};
use altan_runtime::exec::Runtime;
use anyhow::Context;
use jsonrpsee::http_client::HttpClient;
use libp2p::identity::Keypair;
use parity_scale_codec::Encode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// One token: 10^18 of the smallest unit.
pub const TOKEN: Balance = 1_000_000_000_000_000_000;
/// Blocks per epoch: short, so that a validator set change takes a couple of seconds.
pub const EPOCH_LENGTH: u64 = 10;
/// `--empty-block-interval` of every node, in ms.
pub const EMPTY_BLOCK_INTERVAL_MS: u64 = 200;
/// `--consensus-delay` of every node, in ms.
pub const CONSENSUS_DELAY_MS: u64 = 50;
/// The longest a node may take to print its banner.
pub const BANNER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest one RPC call or metrics scrape may take.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// How often waits check their condition again.
pub const POLL: Duration = Duration::from_millis(100);
/// Log lines printed per node when a test fails.
pub const LOG_TAIL_LINES: usize = 60;
/// The name each node's consensus key is stored under in its key directory.
pub const KEY_NAME: &str = "validator";
/// The node's log file in its directory.
pub const LOG_FILE: &str = "node.log";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    altan_node::now_ms()
}

/// A fresh random secret key.
pub fn key() -> SecretKey {
    altan_node::keys::generate()
}

/// Staking parameters for short tests: one token to validate, and evidence and unbonding
/// periods a few epochs long (evidence_max_age + epoch_length <= unbonding_period).
pub fn staking_params() -> StakingParams {
    StakingParams {
        min_validator_stake: TOKEN,
        max_validators: 10,
        unbonding_period: 100,
        evidence_max_age: 50,
        ..StakingParams::default()
    }
}

/// A spec with `validators` (each key is also the validator's account) and funded `accounts`,
/// epochs of [`EPOCH_LENGTH`] blocks and [`staking_params`]. Fails at once, naming the rule, if
/// the runtime would refuse to build its genesis.
pub fn spec(
    chain_id: u64,
    validators: &[(&SecretKey, Balance)],
    accounts: &[(Address, Balance)],
) -> ChainSpec {
    let spec = ChainSpec {
        name: format!("altan-node-test-{chain_id}"),
        chain_id,
        genesis_time_ms: now_ms(),
        block_gas_limit: altan_node::dev::DEV_BLOCK_GAS_LIMIT,
        epoch_length: EPOCH_LENGTH,
        accounts: accounts
            .iter()
            .map(|(address, balance)| GenesisAccount { address: *address, balance: *balance })
            .collect(),
        validators: validators
            .iter()
            .map(|(key, stake)| GenesisValidator {
                address: key.address(),
                consensus_key: key.public_key(),
                stake: *stake,
                commission_bps: 1_000,
            })
            .collect(),
        staking: staking_params(),
        min_gas_price: 0,
    };
    if let Err(error) = Runtime::genesis(&spec) {
        panic!("the test's chain spec is refused by the runtime: {error}");
    }
    spec
}

/// Checks `probe` every [`POLL`] until it returns `Some`, and returns that. Fails after
/// `timeout` with `what` and the last thing the probe reported (its error, or the `Debug` of
/// what it last saw, through [`Probe`]).
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Probe<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(Probe::Done(value)) => return value,
            Ok(Probe::Seen(seen)) => seen,
            Err(error) => format!("error: {error:#}"),
        };
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}; last seen: {last}");
        tokio::time::sleep(POLL).await;
    }
}

/// What one check of [`until`] found.
pub enum Probe<T> {
    /// The condition holds, with this value.
    Done(T),
    /// Not yet; this is what was seen (for the failure message).
    Seen(String),
}

impl<T> Probe<T> {
    /// Not yet, having seen `seen`.
    pub fn seen(seen: impl Debug) -> Probe<T> {
        Probe::Seen(format!("{seen:?}"))
    }
}

/// Runs one RPC call (or any request) with [`RPC_TIMEOUT`].
pub async fn timed<T, E>(call: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => anyhow::bail!("no answer within {RPC_TIMEOUT:?}"),
    }
}

/// How to start a node.
#[derive(Clone, Default)]
pub struct NodeConfig {
    /// The consensus key (`--validator-key`); none for a full node.
    pub key: Option<SecretKey>,
    /// The validator's account (`--validator-account`), when it is not the key's own.
    pub account: Option<Address>,
    /// Peers to start from (`--bootnode`).
    pub bootnodes: Vec<Multiaddr>,
}

/// A running `altan run` process.
pub struct Node {
    /// A name for messages.
    pub name: String,
    /// Its JSON-RPC URL.
    pub rpc_url: String,
    /// Its metrics URL (`http://host:port/metrics`).
    pub metrics_url: String,
    /// Its libp2p identity.
    pub peer_id: PeerId,
    /// Its p2p addresses, each ending in `/p2p/<peer id>`.
    pub p2p: Vec<Multiaddr>,
    /// The chain id from the banner.
    pub chain_id: u64,
    client: HttpClient,
    child: Mutex<Child>,
    log: PathBuf,
    // Last, so that the process is killed before its directory is removed.
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts `altan run` on `spec` in a new temporary directory and waits for its banner.
    pub async fn start(name: &str, spec: &ChainSpec, config: NodeConfig) -> Node {
        let dir = tempfile::Builder::new()
            .prefix(&format!("altan-it-{name}-"))
            .tempdir()
            .expect("a temporary directory");
        let spec_path = dir.path().join("spec.json");
        fs::write(&spec_path, serde_json::to_string_pretty(spec).expect("the spec as JSON"))
            .expect("writing the spec");
        let log = dir.path().join(LOG_FILE);
        let stderr = File::create(&log).expect("creating the node's log");

        let mut command = Command::new(env!("CARGO_BIN_EXE_altan"));
        command
            .args(["run", "--json", "--chain"])
            .arg(&spec_path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--rpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .args(["--empty-block-interval", &EMPTY_BLOCK_INTERVAL_MS.to_string()])
            .args(["--consensus-delay", &CONSENSUS_DELAY_MS.to_string()]);
        if let Some(key) = &config.key {
            let keys_dir = dir.path().join("keys");
            KeyStore::new(&keys_dir).save(KEY_NAME, key).expect("saving the consensus key");
            command.args(["--validator-key", KEY_NAME]).arg("--keys-dir").arg(&keys_dir);
        }
        if let Some(account) = config.account {
            command.args(["--validator-account", &account.to_string()]);
        }
        for bootnode in &config.bootnodes {
            command.args(["--bootnode", &bootnode.to_string()]);
        }
        let log_level = std::env::var("ALTAN_TEST_LOG").unwrap_or_else(|_| "info".into());
        let mut child = command
            .env("RUST_LOG", log_level)
            .env_remove("ALTAN_KEYS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("starting altan run");
        let stdout = child.stdout.take().expect("piped stdout");

        // The banner is the first line; the rest of stdout is drained so that the node never
        // writes into a closed pipe.
        let (banner_tx, banner_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = banner_tx.send(lines.next());
            for _ in lines {}
        });
        let banner = match tokio::time::timeout(BANNER_TIMEOUT, banner_rx).await {
            Ok(Ok(Some(Ok(line)))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{name}: no banner within {BANNER_TIMEOUT:?} ({other:?}); its log:\n{}",
                    tail(&log, LOG_TAIL_LINES)
                );
            }
        };
        let banner: serde_json::Value = serde_json::from_str(&banner)
            .unwrap_or_else(|e| panic!("{name}: the banner {banner:?} is not JSON: {e}"));
        let field = |key: &str| {
            banner[key]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no {key} in the banner {banner}"))
                .to_string()
        };
        let rpc_url = field("rpc");
        let p2p: Vec<Multiaddr> = banner["p2p"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no p2p addresses in the banner {banner}"))
            .iter()
            .map(|a| a.as_str().and_then(|a| a.parse().ok()).expect("a multiaddr"))
            .collect();
        assert!(!p2p.is_empty(), "{name}: the banner lists no p2p address");
        Node {
            name: name.to_string(),
            client: altan_node::client::http(&rpc_url).expect("an RPC client"),
            metrics_url: field("metrics"),
            peer_id: field("peerId").parse().expect("a peer id"),
            chain_id: banner["chainId"].as_u64().expect("a chain id"),
            rpc_url,
            p2p,
            child: Mutex::new(child),
            log,
            _dir: dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// Fails if the process has exited.
    pub fn check_running(&self) -> anyhow::Result<()> {
        match self.child.lock().unwrap().try_wait()? {
            None => Ok(()),
            Some(status) => anyhow::bail!("{} exited: {status}", self.name),
        }
    }

    /// The RPC client.
    pub fn rpc(&self) -> &HttpClient {
        &self.client
    }

    /// Its address for `--bootnode` or a peer's bootnodes.
    pub fn bootnode(&self) -> Multiaddr {
        self.p2p[0].clone()
    }

    /// `system_health`.
    pub async fn health(&self) -> anyhow::Result<HealthJson> {
        self.check_running()?;
        timed(self.client.health())
            .await
            .with_context(|| format!("system_health of {} at {}", self.name, self.rpc_url))
    }

    /// The height of the newest final block.
    pub async fn final_height(&self) -> anyhow::Result<u64> {
        Ok(self.health().await?.final_height)
    }

    /// The header of the final block at `height`.
    pub async fn header(&self, height: u64) -> anyhow::Result<HeaderJson> {
        timed(self.client.header(BlockId::Number(height)))
            .await?
            .with_context(|| format!("{} has no block {height}", self.name))
    }

    /// The validator set of the epoch containing `at`.
    pub async fn validators(&self, at: BlockId) -> anyhow::Result<ValidatorsJson> {
        timed(self.client.validators(Some(at))).await
    }

    /// Waits until the final height is at least `height`, and returns it.
    pub async fn wait_final(&self, height: u64, timeout: Duration) -> u64 {
        let what = format!("{} finalizes height {height}", self.name);
        until(&what, timeout, || async {
            let final_height = self.final_height().await?;
            Ok(if final_height >= height {
                Probe::Done(final_height)
            } else {
                Probe::seen(format!("final height {final_height}"))
            })
        })
        .await
    }

    /// The value of the metric `name` (a counter's `_total` suffix may be left out).
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = scrape(&self.metrics_url).await?;
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (key, value) = line.split_once(' ')?;
                (key == name || key.strip_suffix("_total") == Some(name)).then_some(value)
            })
            .with_context(|| format!("no metric {name} in:\n{text}"))?
            .trim()
            .parse()
            .with_context(|| format!("metric {name} is not a number"))
    }

    /// The process's resident memory (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .context("no VmRSS in /proc/<pid>/status")?;
        let kib: u64 = line
            .trim_start_matches("VmRSS:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("unreadable {line:?}"))?;
        Ok(kib * 1024)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- last {LOG_TAIL_LINES} lines of {}'s log ({}) ----\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, LOG_TAIL_LINES)
            );
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `GET` of a metrics URL (`http://host:port/path`) over plain HTTP/1.1; the body.
async fn scrape(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("http://").context("a metrics URL is http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(RPC_TIMEOUT, fetch)
        .await
        .with_context(|| format!("{url} did not answer within {RPC_TIMEOUT:?}"))??;
    let response = String::from_utf8(response).context("a metrics response is text")?;
    let (head, body) = response.split_once("\r\n\r\n").context("an HTTP response")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "{url} answered {head}");
    Ok(body.to_string())
}

/// An in-process libp2p peer of a node's chain, connected to it: the test's hands on the wire.
/// Gossip it receives is reported as ignored and block requests to it are refused, so it never
/// vouches for anything.
pub struct Peer {
    /// The network service.
    pub handle: NetworkHandle,
    /// The node it connected to.
    pub node: PeerId,
    sending: u64,
    drain: JoinHandle<()>,
}

impl Peer {
    /// Starts a peer with a new identity, connects it to `node` and waits until it sees the
    /// node subscribed to every topic (so that what it publishes reaches the node).
    pub async fn connect(node: &Node) -> Peer {
        let mut config = NetworkConfig::new(
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            Keypair::generate_ed25519(),
            node.chain_id,
        );
        config.bootnodes = vec![node.bootnode()];
        config.heartbeat_interval = Duration::from_millis(200);
        config.discovery_interval = Duration::from_millis(500);
        let (handle, mut events) = network::start(config).await.expect("the peer's network");
        let reporter = handle.clone();
        let drain = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetworkEvent::Gossip { source, id, .. } => {
                        let _ = reporter.report(id, source, Validation::Ignore).await;
                    }
                    // Dropping `respond` refuses the request.
                    NetworkEvent::BlocksRequested { respond, .. } => drop(respond),
                    NetworkEvent::PeerConnected(_) | NetworkEvent::PeerDisconnected(_) => {}
                }
            }
        });
        let peer = Peer { handle, node: node.peer_id, sending: rand::random(), drain };
        let what = format!("a peer sees {} subscribed to every topic", node.name);
        until(&what, Duration::from_secs(20), || async {
            for topic in Topic::ALL {
                let peers = peer.handle.topic_peers(topic).await?;
                if !peers.contains(&peer.node) {
                    return Ok(Probe::seen(format!("{topic:?}: {peers:?}")));
                }
            }
            Ok(Probe::Done(()))
        })
        .await;
        peer
    }

    /// Publishes raw bytes on `topic`.
    pub async fn publish_raw(&self, topic: Topic, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.handle.publish(topic, bytes).await.map(|_| ())
    }

    /// Publishes `body` on the consensus topic in the engine's envelope.
    pub async fn publish_consensus(&mut self, body: ConsensusGossip) {
        self.sending = self.sending.wrapping_add(1);
        let bytes = Envelope { sending: self.sending, body }.encode();
        self.publish_raw(Topic::Consensus, bytes).await.expect("publishing a consensus message");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

/// A bare libp2p swarm (TCP, noise, yamux) that speaks only the block sync protocol of
/// `chain_id`, outbound, with `codec`: tests use it to send what the network service never would.
pub fn sync_requester<C>(
    chain_id: u64,
    codec: C,
    timeout: Duration,
) -> libp2p::Swarm<libp2p::request_response::Behaviour<C>>
where
    C: libp2p::request_response::Codec<Protocol = libp2p::StreamProtocol> + Clone + Send + 'static,
{
    use libp2p::request_response::{Behaviour, Config, ProtocolSupport};
    let protocol = format!("/altan/{chain_id}/sync/1");
    let protocol = libp2p::StreamProtocol::try_from_owned(protocol).expect("a valid protocol name");
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::new(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("the TCP transport")
        .with_behaviour(|_| {
            let config = Config::default().with_request_timeout(timeout);
            Behaviour::with_codec(codec, [(protocol, ProtocolSupport::Outbound)], config)
        })
        .expect("the behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}
