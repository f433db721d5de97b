//! The docker compose devnet (docker-compose.yml) for real: the node image built from the
//! Dockerfile, four validators and an RPC node in containers on their own network, a contract
//! deployed through one node and called through another, then a validator killed, one paused,
//! one cut off the network and one restarted. After each fault the other three validators keep
//! finalizing, the returning node catches up, and every node's final blocks are the same blocks
//! (hash, parent and state root, height by height).
//!
//! It needs a docker engine and Compose (`docker compose` or `docker-compose` 1.29), so it is
//! ignored in the ordinary run; `./x test` runs it afterwards when `docker info` works:
//!
//! ```sh
//! cargo test -p altan-tests --test it devnet -- --ignored --nocapture
//! ```
//!
//! Everything it starts (containers, network, volumes, image) carries a project name of its own
//! and is removed at the end, also when it fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::{BlockId, StatusJson};
use altan_primitives::{Address, Hash};
use altan_tests::node::altan_binary;
use anyhow::{Context, bail, ensure};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::{Value, json};

use crate::node::{call, deploy_token, dev_key, query};

const NODES: [&str; 5] = ["validator-0", "validator-1", "validator-2", "validator-3", "rpc"];
/// The longest any one wait of the test lasts.
const TIMEOUT: Duration = Duration::from_secs(180);
/// Final blocks the others must add while a validator is down.
const PROGRESS: u64 = 5;

#[test]
#[ignore = "needs a docker engine; ./x test runs it after the other tests (docs/devnet.md)"]
fn devnet_finalizes_through_faults() {
    if !succeeds(Command::new("docker").arg("info")) {
        eprintln!("devnet test skipped: no docker engine (`docker info` failed)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let mut devnet = Devnet::start().unwrap_or_else(|e| panic!("starting the devnet: {e:#}"));
    eprintln!("devnet: up and finalizing after {:.1} s in all", started.elapsed().as_secs_f64());
    if let Err(e) = runtime.block_on(scenario(&mut devnet)) {
        panic!("devnet: {e:#}");
    }
    devnet.passed = true;
    eprintln!("devnet: passed in {:.1} s", started.elapsed().as_secs_f64());
}

async fn scenario(devnet: &mut Devnet) -> anyhow::Result<()> {
    // A token deployed through validator 0, called through validator 2, read through every node.
    let (owner, holder) = (dev_key(0), dev_key(1));
    let holder_address = json!(holder.address().to_string());
    let token =
        deploy_token(&devnet.rpc("validator-0"), &owner, ("Devnet", "DEV", 18), 1_000_000).await;
    eprintln!("devnet: token {token} deployed through validator-0");
    devnet.wait_for_code("validator-2", token).await?;
    let receipt = call(
        &devnet.rpc("validator-2"),
        &owner,
        token,
        "transfer",
        &[("to", holder_address.clone()), ("value", json!("250"))],
        0,
    )
    .await;
    ensure!(receipt.status == StatusJson::Success, "transfer through validator-2: {receipt:?}");
    eprintln!("devnet: transfer through validator-2 in block {}", receipt.block_height);
    devnet.wait_final(&NODES, receipt.block_height, "the transfer to be final everywhere").await?;
    for node in NODES {
        let balance =
            query(&devnet.rpc(node), token, "balance_of", &[("owner", holder_address.clone())])
                .await;
        ensure!(balance == json!("250"), "{node} reads a balance of {balance}, not 250");
    }
    devnet.check_agreement(&NODES).await?;

    // Killed (SIGKILL, the restart policy does not apply to `docker kill`), then started again.
    devnet.fault("validator-3", "killed", &["kill"], &["start"], |_, _| Ok(())).await?;

    // Paused (frozen: its connections stay open but nothing answers), then resumed.
    ensure!(devnet.answers("validator-2"), "validator-2 does not answer RPC before the pause");
    devnet
        .fault("validator-2", "paused", &["pause"], &["unpause"], |devnet, _| {
            ensure!(!devnet.answers("validator-2"), "validator-2 answers RPC while paused");
            Ok(())
        })
        .await?;

    // Cut off the network, then reconnected at its old address (the others dial it there). While
    // alone it must not finalize anything: it holds a quarter of the stake.
    let network = devnet.network.clone();
    let container = devnet.container("validator-1").to_string();
    let address = devnet.address("validator-1")?;
    let mut alone = 0;
    devnet
        .fault(
            "validator-1",
            "disconnected",
            &["network", "disconnect", &network, &container],
            &["network", "connect", "--ip", &address, &network, &container],
            |devnet, moment| {
                let now = devnet.exec_final_height("validator-1")?;
                match moment {
                    Moment::Broken => alone = now,
                    // A block whose commit arrived just as the link went is the most it can add.
                    Moment::Progressed => ensure!(
                        now <= alone.saturating_add(1),
                        "validator-1 finalized alone: final height {alone} when cut off, {now} \
                         after the others finalized {PROGRESS} more"
                    ),
                }
                Ok(())
            },
        )
        .await?;

    // Restarted gracefully (SIGTERM, then started again).
    devnet
        .fault("validator-0", "restarted", &["stop", "--time", "20"], &["start"], |_, _| Ok(()))
        .await?;

    // Crashed: its process killed from outside docker, which the restart policy
    // (unless-stopped) answers by starting it again by itself.
    devnet.crash("validator-2").await?;

    // Still serving transactions: another transfer, this time through the RPC node.
    let receipt = call(
        &devnet.rpc("rpc"),
        &owner,
        token,
        "transfer",
        &[("to", holder_address.clone()), ("value", json!("1"))],
        0,
    )
    .await;
    ensure!(receipt.status == StatusJson::Success, "transfer through the rpc node: {receipt:?}");
    devnet.wait_final(&NODES, receipt.block_height, "the second transfer").await?;
    let balance =
        query(&devnet.rpc("validator-3"), token, "balance_of", &[("owner", holder_address)]).await;
    ensure!(balance == json!("251"), "validator-3 reads a balance of {balance}, not 251");
    let height = devnet.check_agreement(&NODES).await?;
    eprintln!("devnet: every node agrees on all {height} final blocks");
    Ok(())
}

/// When [`Devnet::fault`] runs its check.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Right after the fault began.
    Broken,
    /// After the others finalized [`PROGRESS`] more blocks, before the fault ends.
    Progressed,
}

/// A compose project of the devnet, torn down when dropped.
struct Devnet {
    /// `docker compose` or `docker-compose`, with the project's name and file.
    compose: Vec<String>,
    /// Variables the compose file reads.
    env: Vec<(String, String)>,
    project: String,
    image: String,
    /// The compose network's name.
    network: String,
    /// Container id per service.
    containers: BTreeMap<&'static str, String>,
    /// An RPC client per service, on its published port (which changes when it restarts).
    clients: BTreeMap<&'static str, HttpClient>,
    /// Where each service's RPC is published now.
    published: BTreeMap<&'static str, SocketAddr>,
    /// Every final block seen so far, by height: (hash, state root), from whichever node showed
    /// it first; every other node must show the same.
    canonical: BTreeMap<u64, (Hash, Hash)>,
    /// Per node, the height up to which its final blocks were compared.
    checked: BTreeMap<&'static str, u64>,
    /// Set when the scenario passed; otherwise the nodes' logs are printed at teardown.
    passed: bool,
}

impl Devnet {
    /// Builds the image, starts the project, waits until every node has finalized a few blocks.
    fn start() -> anyhow::Result<Devnet> {
        let root = workspace_root();
        let compose = compose_command()?;
        let id = std::process::id();
        let project = format!("altan-devnet-test-{id}");
        let image = format!("altan:devnet-test-{id}");

        remove_stale_projects(&compose, &root);

        let started = Instant::now();
        let binary = altan_binary();
        run(Command::new(root.join("scripts/docker-image.sh"))
            .arg("--binary")
            .arg(&binary)
            .args(["--tag", &image])
            .current_dir(&root))
        .context("building the image (scripts/docker-image.sh)")?;
        eprintln!(
            "devnet: image {image} built from {} in {:.1} s",
            binary.display(),
            started.elapsed().as_secs_f64()
        );

        let net = free_subnet()?;
        let mut env = vec![
            ("ALTAN_IMAGE".to_string(), image.clone()),
            ("ALTAN_DEVNET_NET".to_string(), net.clone()),
            // Blocks are quick here: a short epoch brings the test through epoch changes.
            ("ALTAN_DEVNET_EPOCH_LENGTH".to_string(), "20".to_string()),
            ("RUST_LOG".to_string(), "info".to_string()),
        ];
        // Ports docker picks, so that a devnet of the user's on the default ports can be up.
        for i in 0..NODES.len() {
            env.push((format!("ALTAN_DEVNET_RPC_{i}"), String::new()));
            env.push((format!("ALTAN_DEVNET_METRICS_{i}"), String::new()));
        }
        let mut compose_args = compose;
        compose_args.extend([
            "-p".to_string(),
            project.clone(),
            "-f".to_string(),
            root.join("docker-compose.yml").display().to_string(),
        ]);
        // From here on, Drop tears down whatever exists.
        let mut devnet = Devnet {
            compose: compose_args,
            env,
            project,
            image,
            network: String::new(),
            containers: BTreeMap::new(),
            clients: BTreeMap::new(),
            published: BTreeMap::new(),
            canonical: BTreeMap::new(),
            checked: BTreeMap::new(),
            passed: false,
        };

        let up = Instant::now();
        devnet.compose(&["up", "-d"]).context("docker compose up")?;
        eprintln!(
            "devnet: project {} on {net}.0/24: `up -d` took {:.1} s",
            devnet.project,
            up.elapsed().as_secs_f64()
        );
        for node in NODES {
            let out = devnet.compose(&["ps", "-q", node])?;
            let id = stdout(&out).lines().next().unwrap_or_default().trim().to_string();
            ensure!(!id.is_empty(), "compose has no container for {node}");
            devnet.containers.insert(node, id);
        }
        let networks = docker(&[
            "inspect",
            "-f",
            "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
            devnet.container("validator-0"),
        ])?;
        devnet.network = stdout(&networks).split_whitespace().next().unwrap_or_default().into();
        ensure!(!devnet.network.is_empty(), "validator-0 is on no network");
        for node in NODES {
            devnet.connect(node)?;
        }

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(devnet.wait_final(
            &NODES,
            3,
            "the devnet to finalize its first blocks",
        ))?;
        eprintln!(
            "devnet: all five nodes at final height >= 3 {:.1} s after `up`",
            up.elapsed().as_secs_f64()
        );
        runtime.block_on(devnet.wait_healthy())?;
        eprintln!("devnet: all five nodes healthy {:.1} s after `up`", up.elapsed().as_secs_f64());
        Ok(devnet)
    }

    /// Runs the compose tool of this project.
    fn compose(&self, args: &[&str]) -> anyhow::Result<Output> {
        let (program, rest) = self.compose.split_first().context("a compose command")?;
        let mut command = Command::new(program);
        command.args(rest).args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        run(&mut command)
    }

    fn container(&self, node: &str) -> &str {
        self.containers.get(node).map_or("", String::as_str)
    }

    /// The node's address on the devnet network.
    fn address(&self, node: &str) -> anyhow::Result<String> {
        let format =
            format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.network);
        let out = docker(&["inspect", "-f", &format, self.container(node)])?;
        let address = stdout(&out).trim().to_string();
        ensure!(!address.is_empty(), "{node} has no address on {}", self.network);
        Ok(address)
    }

    /// (Re)makes the RPC client of `node` from the host port its 9944 is published on now.
    fn connect(&mut self, node: &'static str) -> anyhow::Result<()> {
        let out = docker(&["port", self.container(node), "9944/tcp"])?;
        let published = stdout(&out)
            .lines()
            .find(|line| line.starts_with("127.0.0.1:"))
            .map(str::to_string)
            .with_context(|| format!("{node}'s RPC port is not published on 127.0.0.1"))?;
        let address: SocketAddr = published.trim().parse()?;
        let client = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(5))
            .build(format!("http://{address}"))?;
        self.clients.insert(node, client);
        self.published.insert(node, address);
        Ok(())
    }

    /// Whether `node` answers a JSON-RPC request on its published port within two seconds (a
    /// raw request: docker's port proxy accepts the connection even when the node is frozen).
    fn answers(&self, node: &str) -> bool {
        let Some(address) = self.published.get(node) else { return false };
        let timeout = Duration::from_secs(2);
        let Ok(mut stream) = TcpStream::connect_timeout(address, timeout) else { return false };
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"chain_finalHead","params":[]}"#;
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut reply = [0_u8; 12];
        stream.set_read_timeout(Some(timeout)).is_ok()
            && stream.set_write_timeout(Some(timeout)).is_ok()
            && stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && reply.starts_with(b"HTTP/1.1 200")
    }

    /// Waits until docker reports every node healthy (the compose file's healthcheck).
    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mut states = BTreeMap::new();
            for node in NODES {
                let out =
                    docker(&["inspect", "-f", "{{.State.Health.Status}}", self.container(node)])?;
                states.insert(node, stdout(&out).trim().to_string());
            }
            if states.values().all(|state| state == "healthy") {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "not every node is healthy: {states:?}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn rpc(&self, node: &str) -> HttpClient {
        self.clients.get(node).cloned().unwrap_or_else(|| panic!("no client for {node}"))
    }

    /// The final height of every node in `nodes`, or why it could not be read.
    async fn final_heights(
        &self,
        nodes: &[&'static str],
    ) -> BTreeMap<&'static str, Result<u64, String>> {
        let mut heights = BTreeMap::new();
        for &node in nodes {
            let height =
                self.rpc(node).final_head().await.map(|h| h.height).map_err(|e| e.to_string());
            heights.insert(node, height);
        }
        heights
    }

    /// Waits until every node in `nodes` has a final height of at least `height`.
    async fn wait_final(
        &self,
        nodes: &[&'static str],
        height: u64,
        what: &str,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let heights = self.final_heights(nodes).await;
            if heights.values().all(|h| matches!(h, Ok(h) if *h >= height)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("waited {TIMEOUT:?} for {what} (final height >= {height}): {heights:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The highest final height among `nodes` that answer.
    async fn highest_final(&self, nodes: &[&'static str]) -> u64 {
        self.final_heights(nodes)
            .await
            .values()
            .filter_map(|h| h.as_ref().ok().copied())
            .max()
            .unwrap_or(0)
    }

    /// Waits until `node` has the contract's code at its newest block.
    async fn wait_for_code(&self, node: &'static str, contract: Address) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        while self.rpc(node).code(contract, None).await?.is_none() {
            ensure!(
                Instant::now() < deadline,
                "{node} has no code at {contract} after {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Compares every final block of every node in `nodes` not compared yet with the blocks
    /// the others showed at the same height: hash, parent and state root. Returns the lowest
    /// final height among them (every block up to it has been compared on every node).
    async fn check_agreement(&mut self, nodes: &[&'static str]) -> anyhow::Result<u64> {
        let mut lowest = u64::MAX;
        for &node in nodes {
            let rpc = self.rpc(node);
            let head = rpc.final_head().await.with_context(|| format!("{node}'s final head"))?;
            let from = self.checked.get(node).copied().unwrap_or(0) + 1;
            for height in from..=head.height {
                let header = rpc
                    .header(BlockId::Number(height))
                    .await
                    .with_context(|| format!("{node}'s block {height}"))?
                    .with_context(|| {
                        format!("{node} has no block {height} below its final head {}", head.height)
                    })?;
                ensure!(
                    header.height == height,
                    "{node} answered block {} for {height}",
                    header.height
                );
                if let Some((parent, _)) = self.canonical.get(&(height - 1)) {
                    ensure!(
                        header.parent_hash == *parent,
                        "{node}'s final block {height} has parent {}, not {parent}",
                        header.parent_hash
                    );
                }
                let seen =
                    *self.canonical.entry(height).or_insert((header.hash, header.state_root));
                ensure!(
                    seen == (header.hash, header.state_root),
                    "final block {height} differs: {node} has {} (state root {}), another node {} \
                     (state root {})",
                    header.hash,
                    header.state_root,
                    seen.0,
                    seen.1
                );
            }
            self.checked.insert(node, head.height.max(from - 1));
            lowest = lowest.min(head.height);
        }
        Ok(lowest)
    }

    /// One fault on `node`: `docker <break_args>`, the others finalize [`PROGRESS`] more blocks,
    /// `docker <heal_args>`, then `node` catches up and every node's final blocks agree. `check`
    /// runs right after the break and again before the heal.
    async fn fault(
        &mut self,
        node: &'static str,
        what: &str,
        break_args: &[&str],
        heal_args: &[&str],
        mut check: impl FnMut(&Devnet, Moment) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let others: Vec<&'static str> = NODES.iter().copied().filter(|n| *n != node).collect();
        let container = self.container(node).to_string();
        let started = Instant::now();
        docker(&with_container(break_args, &container))?;
        check(self, Moment::Broken)?;
        let from = self.highest_final(&others).await;
        self.wait_final(
            &others,
            from + PROGRESS,
            &format!("the others to finalize while {node} is {what}"),
        )
        .await?;
        let progressed = started.elapsed();
        check(self, Moment::Progressed)?;
        docker(&with_container(heal_args, &container))?;
        let healed = Instant::now();
        self.connect(node)?;
        let target = self.highest_final(&others).await;
        self.wait_final(&[node], target, &format!("{node} to catch up after being {what}")).await?;
        let height = self.check_agreement(&NODES).await?;
        eprintln!(
            "devnet: {node} {what}: the others finalized {PROGRESS} blocks in {:.1} s; it caught up \
             to {target} in {:.1} s; all agree up to {height}",
            progressed.as_secs_f64(),
            healed.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Kills `node`'s process from the host, as a crash would, and waits for the restart policy
    /// to bring it back and for it to catch up.
    async fn crash(&mut self, node: &'static str) -> anyhow::Result<()> {
        let container = self.container(node).to_string();
        let restarts = |devnet: &Devnet| -> anyhow::Result<u64> {
            let out = docker(&["inspect", "-f", "{{.RestartCount}}", devnet.container(node)])?;
            Ok(stdout(&out).trim().parse()?)
        };
        let before = restarts(self)?;
        let pid =
            stdout(&docker(&["inspect", "-f", "{{.State.Pid}}", &container])?).trim().to_string();
        // The engine may live in another pid namespace; only a pid that is this container's
        // altan process here may be killed.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if pid == "0" || !cmdline.contains("altan") || !cmdline.contains("--validator-key") {
            eprintln!(
                "devnet: crash of {node} skipped: its process (pid {pid} in the engine's view) is not \
                 visible from here"
            );
            return Ok(());
        }
        let started = Instant::now();
        run(Command::new("kill").args(["-KILL", &pid]))?;
        let deadline = Instant::now() + TIMEOUT;
        while restarts(self)? == before {
            ensure!(Instant::now() < deadline, "the restart policy did not restart {node}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.connect(node)?;
        let others: Vec<&'static str> = NODES.iter().copied().filter(|n| *n != node).collect();
        let target = self.highest_final(&others).await;
        self.wait_final(&[node], target, &format!("{node} to catch up after its crash")).await?;
        let height = self.check_agreement(&NODES).await?;
        eprintln!(
            "devnet: {node} crashed (kill -9 of pid {pid}): restarted by docker and caught up to \
             {target} in {:.1} s; all agree up to {height}",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The final height `node` reports to itself (through `docker exec`, for when the host
    /// cannot reach it).
    fn exec_final_height(&self, node: &str) -> anyhow::Result<u64> {
        let out = docker(&["exec", self.container(node), "altan", "block", "final", "--json"])?;
        let block: Value =
            serde_json::from_slice(&out.stdout).context("altan block final --json")?;
        block["header"]["height"].as_u64().with_context(|| format!("no header height in {block}"))
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if !self.passed
            && let Ok(out) = self.compose(&["logs", "--no-color", "--tail=60"])
        {
            eprintln!("devnet: the nodes' last log lines:\n{}", stdout(&out));
        }
        // A paused container cannot be stopped; a disconnected one is removed all the same.
        for container in self.containers.values() {
            let _ = Command::new("docker")
                .args(["unpause", container])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Err(e) = self.compose(&["down", "-v", "--remove-orphans", "-t", "5"]) {
            eprintln!("devnet: tearing down {}: {e:#}", self.project);
        }
        let _ = Command::new("docker")
            .args(["image", "rm", &self.image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// Tears down what runs of this test that were killed before their teardown left behind: the
/// projects of test processes that no longer exist.
fn remove_stale_projects(compose: &[String], root: &Path) {
    let Ok(out) = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=com.docker.compose.project",
        "--format",
        "{{.Label \"com.docker.compose.project\"}}",
    ]) else {
        return;
    };
    let mut projects: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    projects.sort();
    projects.dedup();
    for project in projects {
        let Some(pid) = project.strip_prefix("altan-devnet-test-") else { continue };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        eprintln!("devnet: removing {project}, left behind by a test run that was killed");
        let (program, rest) = compose.split_first().expect("a compose command");
        let _ = Command::new(program)
            .args(rest)
            .args(["-p", &project, "-f"])
            .arg(root.join("docker-compose.yml"))
            .args(["down", "-v", "--remove-orphans", "-t", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("docker")
            .args(["image", "rm", &format!("altan:devnet-test-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `docker compose` (v2) when the docker CLI has it, else `docker-compose`.
fn compose_command() -> anyhow::Result<Vec<String>> {
    if succeeds(Command::new("docker").args(["compose", "version"])) {
        return Ok(vec!["docker".into(), "compose".into()]);
    }
    if succeeds(Command::new("docker-compose").arg("version")) {
        return Ok(vec!["docker-compose".into()]);
    }
    bail!("a docker engine but no Compose: install docker-compose or the compose plugin")
}

/// A /24 no docker network uses, as its first three octets (172.30.100-249).
fn free_subnet() -> anyhow::Result<String> {
    let ids = stdout(&docker(&["network", "ls", "-q"])?)
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let mut used = String::new();
    if !ids.is_empty() {
        let mut args =
            vec!["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"];
        args.extend(ids.iter().map(String::as_str));
        used = stdout(&docker(&args)?);
    }
    let start = std::process::id() % 150;
    (0..150)
        .map(|i| format!("172.30.{}", 100 + (start + i) % 150))
        .find(|net| !used.split_whitespace().any(|subnet| subnet.starts_with(&format!("{net}."))))
        .context("no free 172.30.x.0/24 for the devnet")
}

fn with_container<'a>(args: &[&'a str], container: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    if !all.contains(&container) {
        all.push(container);
    }
    all
}

fn docker(args: &[&str]) -> anyhow::Result<Output> {
    run(Command::new("docker").args(args))
}

/// Runs a command to its end; an error with its output when it fails.
fn run(command: &mut Command) -> anyhow::Result<Output> {
    let out =
        command.stdin(Stdio::null()).output().with_context(|| format!("starting {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn succeeds(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
