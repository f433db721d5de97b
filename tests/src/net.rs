//! Several real `altan run` processes on loopback forming one chain: a genesis written by
//! `altan genesis`, validators and full nodes started on it, killed with SIGKILL and restarted on
//! their data directories, and checks over their JSON-RPC that they finalize and agree.
//!
//! Every node's stderr goes to `node.log` in its data directory (appended across restarts).
//! When a test panics, each node prints the tail of its log as it is dropped, so that a failure
//! shows what the nodes saw. `ALTAN_TEST_LOG` sets the nodes' `RUST_LOG` (default `warn`).
//!
//! A devnet holds a process-wide lock while it lives: several nodes per test on a small machine
//! are already a load, so the tests of one test binary that use devnets run one at a time (under
//! nextest, each test is a process of its own and the `multi-node` test group does the same).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use altan_node::client;
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::{BlockId, HeaderJson};
use altan_primitives::Address;
use serde_json::Value;

use crate::node::altan_binary;

/// The longest a node may take to print its banner.
pub const BANNER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest one RPC request may take before a wait counts it as failed.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// How often waits poll the nodes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The log lines printed per node when a test fails.
pub const LOG_TAIL_LINES: usize = 40;
/// `--empty-block-interval` of every node, in ms.
pub const EMPTY_BLOCK_INTERVAL_MS: u64 = 200;
/// `--consensus-delay` of every node, in ms.
pub const CONSENSUS_DELAY_MS: u64 = 50;
/// The name `altan genesis` stores each validator's consensus key under.
pub const VALIDATOR_KEY: &str = "validator";
/// Each node's log file, in its data directory.
pub const LOG_FILE: &str = "node.log";

static SERIAL: Mutex<()> = Mutex::new(());

/// A validator as `altan genesis --json` describes it.
#[derive(Debug, Clone)]
pub struct ValidatorSetup {
    /// Its account address.
    pub address: Address,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its key directory (the consensus key is named [`VALIDATOR_KEY`]).
    pub keys_dir: PathBuf,
}

/// How a node is started, kept for restarts.
#[derive(Debug, Clone)]
struct Launch {
    spec: PathBuf,
    data_dir: PathBuf,
    keys_dir: Option<PathBuf>,
}

/// One `altan run` process (or its data directory while it is stopped).
pub struct NetNode {
    /// A name for messages: `validator-<i>` or `full-<k>`.
    pub name: String,
    /// Its JSON-RPC URL (from the latest start).
    pub rpc: String,
    /// Its peer id.
    pub peer_id: String,
    /// Its p2p addresses, each ending in /p2p/<peer id> (from the latest start).
    pub p2p: Vec<String>,
    /// The banner of the latest start.
    pub banner: Value,
    launch: Launch,
    child: Option<Child>,
}

fn field<'a>(banner: &'a Value, name: &str, what: &str) -> &'a str {
    banner[name].as_str().unwrap_or_else(|| panic!("{what}: no {name:?} string in {banner}"))
}

impl NetNode {
    /// Starts `altan run` for `launch` and waits for its banner.
    fn start(name: &str, launch: Launch, bootnodes: &[String]) -> NetNode {
        let (child, banner) = spawn(name, &launch, bootnodes);
        let what = format!("{name}'s banner");
        let p2p: Vec<String> = banner["p2p"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no \"p2p\" list in {banner}"))
            .iter()
            .map(|a| a.as_str().unwrap_or_else(|| panic!("{what}: {a} is not a string")).into())
            .collect();
        assert!(!p2p.is_empty(), "{what}: the node listens nowhere: {banner}");
        NetNode {
            name: name.into(),
            rpc: field(&banner, "rpc", &what).into(),
            peer_id: field(&banner, "peerId", &what).into(),
            p2p,
            launch,
            child: Some(child),
            banner,
        }
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.launch.data_dir
    }

    /// Its log file.
    pub fn log_path(&self) -> PathBuf {
        self.launch.data_dir.join(LOG_FILE)
    }

    /// Whether it signs consensus messages (it was started with a validator key).
    pub fn is_validator(&self) -> bool {
        self.launch.keys_dir.is_some()
    }

    /// Whether the process is running (started and not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the process at once (SIGKILL), as a crash or a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again on the same data directory (killing it first if it runs), with
    /// `bootnodes` to find its peers.
    pub fn restart(&mut self, bootnodes: &[String]) {
        self.kill();
        let fresh = NetNode::start(&self.name, self.launch.clone(), bootnodes);
        assert_eq!(fresh.peer_id, self.peer_id, "{} changed its peer id on restart", self.name);
        *self = fresh;
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    /// A client for its JSON-RPC. A client is cheap (HTTP requests with no session), and a new
    /// one after a restart reaches the new port.
    fn client(&self) -> impl AltanApiClient + use<> {
        client::http(&self.rpc).unwrap_or_else(|e| panic!("an RPC client for {}: {e}", self.rpc))
    }

    /// Its final height.
    pub async fn final_height(&self) -> Result<u64, String> {
        let client = self.client();
        let head = tokio::time::timeout(RPC_TIMEOUT, client.final_head()).await;
        match head {
            Ok(Ok(head)) => Ok(head.height),
            Ok(Err(e)) => Err(format!("{}: chain_finalHead failed: {e}", self.name)),
            Err(_) => Err(format!("{}: chain_finalHead took over {RPC_TIMEOUT:?}", self.name)),
        }
    }

    /// Its header at `height`, if it has the block.
    pub async fn header(&self, height: u64) -> Result<Option<HeaderJson>, String> {
        let client = self.client();
        let header =
            tokio::time::timeout(RPC_TIMEOUT, client.header(BlockId::Number(height))).await;
        match header {
            Ok(Ok(header)) => Ok(header),
            Ok(Err(e)) => Err(format!("{}: chain_getHeader({height}) failed: {e}", self.name)),
            Err(_) => Err(format!("{}: chain_getHeader took over {RPC_TIMEOUT:?}", self.name)),
        }
    }
}

impl Drop for NetNode {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} ({}), last {LOG_TAIL_LINES} lines of {} ----\n{}",
                self.name,
                self.peer_id,
                self.log_path().display(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
    }
}

/// The last `lines` lines of the file at `path` (or why it could not be read).
fn tail(path: &Path, lines: usize) -> String {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return format!("(cannot read {}: {e})", path.display()),
    };
    let mut last = VecDeque::with_capacity(lines);
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if last.len() == lines {
            last.pop_front();
        }
        last.push_back(line);
    }
    Vec::from(last).join("\n")
}

/// Spawns `altan run` and reads its one-line JSON banner, within [`BANNER_TIMEOUT`].
fn spawn(name: &str, launch: &Launch, bootnodes: &[String]) -> (Child, Value) {
    let log_path = launch.data_dir.join(LOG_FILE);
    fs::create_dir_all(&launch.data_dir)
        .unwrap_or_else(|e| panic!("creating {}: {e}", launch.data_dir.display()));
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", log_path.display()));
    writeln!(log, "==== {name} starting with bootnodes {bootnodes:?} ====")
        .unwrap_or_else(|e| panic!("writing {}: {e}", log_path.display()));

    let mut command = Command::new(altan_binary());
    command
        .args(["run", "--json", "--rpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
        .arg("--chain")
        .arg(&launch.spec)
        .arg("--data-dir")
        .arg(&launch.data_dir)
        .args(["--empty-block-interval", &EMPTY_BLOCK_INTERVAL_MS.to_string()])
        .args(["--consensus-delay", &CONSENSUS_DELAY_MS.to_string()]);
    for bootnode in bootnodes {
        command.args(["--bootnode", bootnode]);
    }
    if let Some(keys_dir) = &launch.keys_dir {
        command.args(["--validator-key", VALIDATOR_KEY]).arg("--keys-dir").arg(keys_dir);
    }
    let log_level = std::env::var("ALTAN_TEST_LOG").unwrap_or_else(|_| "warn".into());
    let mut child = command
        .env("RUST_LOG", log_level)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("starting altan run for {name}: {e}"));

    // A thread reads the banner so that a node that hangs before printing it fails the test
    // instead of blocking it, then drains stdout so that later prints never block the node.
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line).map(|_| line);
        let _ = sender.send(read);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = match receiver.recv_timeout(BANNER_TIMEOUT) {
        Ok(Ok(line)) if !line.trim().is_empty() => line,
        outcome => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            panic!(
                "{name} printed no banner ({}; exit: {status}); its log {} ends:\n{}",
                match outcome {
                    Ok(Ok(_)) => "stdout closed".to_string(),
                    Ok(Err(e)) => format!("reading stdout: {e}"),
                    Err(_) => format!("nothing within {BANNER_TIMEOUT:?}"),
                },
                log_path.display(),
                tail(&log_path, LOG_TAIL_LINES)
            );
        }
    };
    let banner = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{name}'s banner is not JSON ({e}): {line}"));
    (child, banner)
}

/// A chain of several nodes: the genesis, and the nodes started on it. Node `i` is validator
/// `i` after [`Devnet::start_validators`]; full nodes come after.
pub struct Devnet {
    /// The directory holding the spec and every node's data directory.
    pub dir: PathBuf,
    /// The chain spec.
    pub spec: PathBuf,
    /// The chain id.
    pub chain_id: u64,
    /// The genesis validators.
    pub validators: Vec<ValidatorSetup>,
    /// What `altan genesis --json` printed.
    pub genesis: Value,
    nodes: Vec<NetNode>,
    // Dropped after the nodes: the next devnet starts once these processes are gone.
    _serial: MutexGuard<'static, ()>,
}

impl Devnet {
    /// Runs `altan genesis --json --validators <validators> --out <dir>` with `extra` arguments
    /// and reads what it made. Waits for any other devnet of this process to be dropped.
    pub fn genesis(dir: &Path, validators: usize, extra: &[&str]) -> Devnet {
        let serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let output = Command::new(altan_binary())
            .args(["genesis", "--json", "--validators", &validators.to_string()])
            .arg("--out")
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running altan genesis: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "altan genesis failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            stdout
        );
        let genesis: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("altan genesis printed no JSON ({e}): {stdout}"));
        let what = "altan genesis --json";
        let listed = genesis["validators"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no validators in {genesis}"));
        let validators: Vec<ValidatorSetup> = listed
            .iter()
            .map(|v| ValidatorSetup {
                address: field(v, "address", what)
                    .parse()
                    .unwrap_or_else(|e| panic!("{what}: a bad address in {v}: {e:?}")),
                peer_id: field(v, "peerId", what).into(),
                data_dir: field(v, "dataDir", what).into(),
                keys_dir: field(v, "keysDir", what).into(),
            })
            .collect();
        assert_eq!(validators.len(), listed.len());
        Devnet {
            dir: dir.to_path_buf(),
            spec: field(&genesis, "spec", what).into(),
            chain_id: genesis["chainId"]
                .as_u64()
                .unwrap_or_else(|| panic!("{what}: no chainId in {genesis}")),
            validators,
            genesis,
            nodes: Vec::new(),
            _serial: serial,
        }
    }

    /// Starts every genesis validator, each with the ones started before it as bootnodes.
    pub fn start_validators(&mut self) {
        assert!(self.nodes.is_empty(), "validators are started first, once");
        for (index, validator) in self.validators.clone().iter().enumerate() {
            let launch = Launch {
                spec: self.spec.clone(),
                data_dir: validator.data_dir.clone(),
                keys_dir: Some(validator.keys_dir.clone()),
            };
            let bootnodes = self.bootnodes(None);
            let node = NetNode::start(&format!("validator-{index}"), launch, &bootnodes);
            assert_eq!(node.peer_id, validator.peer_id, "validator-{index}'s peer id");
            self.nodes.push(node);
        }
    }

    /// Starts a full node (no validator key) on a new data directory, with every running node
    /// as a bootnode; returns its index.
    pub fn start_full_node(&mut self) -> usize {
        let count = self.nodes.iter().filter(|n| !n.is_validator()).count();
        let name = format!("full-{count}");
        let launch =
            Launch { spec: self.spec.clone(), data_dir: self.dir.join(&name), keys_dir: None };
        let node = NetNode::start(&name, launch, &self.bootnodes(None));
        let index = self.nodes.len();
        self.nodes.push(node);
        index
    }

    /// The p2p addresses of the running nodes, except node `except`.
    pub fn bootnodes(&self, except: Option<usize>) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, node)| Some(*i) != except && node.is_running())
            .flat_map(|(_, node)| node.p2p.iter().cloned())
            .collect()
    }

    /// Node `index`.
    pub fn node(&self, index: usize) -> &NetNode {
        &self.nodes[index]
    }

    /// The indexes of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_running()).collect()
    }

    /// Kills node `index` with SIGKILL.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Restarts node `index` on its data directory, with the other running nodes as bootnodes.
    pub fn restart(&mut self, index: usize) {
        let bootnodes = self.bootnodes(Some(index));
        self.nodes[index].restart(&bootnodes);
    }

    fn names(&self, nodes: &[usize]) -> String {
        nodes.iter().map(|&i| self.nodes[i].name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The final heights of `nodes`, in order.
    pub async fn final_heights(&self, nodes: &[usize]) -> Result<Vec<u64>, String> {
        let mut heights = Vec::with_capacity(nodes.len());
        for &i in nodes {
            heights.push(self.nodes[i].final_height().await?);
        }
        Ok(heights)
    }

    /// The highest final height among `nodes`.
    pub async fn max_final_height(&self, nodes: &[usize]) -> u64 {
        let heights = self.final_heights(nodes).await.unwrap_or_else(|e| panic!("{e}"));
        heights.into_iter().max().unwrap_or_default()
    }

    /// Waits until every node of `nodes` has a final height of at least `height`; panics after
    /// `timeout` with each node's final height (or its last RPC error).
    pub async fn wait_final(&self, nodes: &[usize], height: u64, timeout: Duration) {
        let started = Instant::now();
        let deadline = started.checked_add(timeout).unwrap_or(started);
        loop {
            let mut report = Vec::with_capacity(nodes.len());
            let mut done = true;
            for &i in nodes {
                let node = &self.nodes[i];
                match node.final_height().await {
                    Ok(h) => {
                        done &= h >= height;
                        report.push(format!("{}: {h}", node.name));
                    }
                    Err(e) => {
                        done = false;
                        report.push(e);
                    }
                }
            }
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] did not all reach final height {height} within {timeout:?}; final heights: {}",
                self.names(nodes),
                report.join("; ")
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Checks that every node of `nodes` has the same block at every height `1..=up_to` (hash,
    /// parent and state root) and that each block's parent is the block below it.
    pub async fn assert_agree(&self, nodes: &[usize], up_to: u64) {
        let Some((&first, rest)) = nodes.split_first() else { return };
        let reference = &self.nodes[first];
        let mut parent = reference
            .header(0)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("{} has no genesis block", reference.name));
        for height in 1..=up_to {
            let expected = self.header_of(first, height).await;
            assert_eq!(
                expected.parent_hash, parent.hash,
                "{}'s block {height} does not follow its block {}",
                reference.name, parent.height
            );
            for &i in rest {
                let header = self.header_of(i, height).await;
                assert_eq!(
                    (header.hash, header.parent_hash, header.state_root),
                    (expected.hash, expected.parent_hash, expected.state_root),
                    "{} and {} disagree at height {height} (hash, parent, state root):\n{header:?}\n{expected:?}",
                    self.nodes[i].name,
                    reference.name
                );
            }
            parent = expected;
        }
    }

    async fn header_of(&self, index: usize, height: u64) -> HeaderJson {
        let node = &self.nodes[index];
        match node.header(height).await {
            Ok(Some(header)) => header,
            Ok(None) => panic!(
                "{} has no block at height {height} (final height {:?})",
                node.name,
                node.final_height().await
            ),
            Err(e) => panic!("{e}"),
        }
    }

    /// Checks that no two of `nodes` hold different blocks at any height in `from..=to`; a
    /// node without a block at a height is no conflict.
    pub async fn assert_no_conflict(&self, nodes: &[usize], from: u64, to: u64) {
        for height in from..=to {
            let mut seen: Option<(usize, HeaderJson)> = None;
            for &i in nodes {
                let header = self.nodes[i].header(height).await.unwrap_or_else(|e| panic!("{e}"));
                let Some(header) = header else { continue };
                match &seen {
                    None => seen = Some((i, header)),
                    Some((j, other)) => assert_eq!(
                        header.hash, other.hash,
                        "{} and {} hold different blocks at height {height}",
                        self.nodes[i].name, self.nodes[*j].name
                    ),
                }
            }
        }
    }

    /// Watches `nodes` for `period` and checks that none of their final heights goes past the
    /// highest one at the start; returns that height.
    pub async fn assert_stalled(&self, nodes: &[usize], period: Duration) -> u64 {
        let started = Instant::now();
        let stalled = self.max_final_height(nodes).await;
        while started.elapsed() < period {
            let heights = self.final_heights(nodes).await.unwrap_or_else(|e| panic!("{e}"));
            assert!(
                heights.iter().all(|&h| h <= stalled),
                "finality went on past height {stalled} after {:?}: [{}] are at {heights:?}",
                started.elapsed(),
                self.names(nodes)
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        stalled
    }
}
