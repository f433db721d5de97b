//! `altan bench --attack`: the attacks of issue #16 on free work, each from many clients, run
//! while the benchmark's honest load is measured, so that what they cost honest users shows in
//! its figures (submit-to-final latency, sustained rate, the node's memory).
//!
//! Each attacking client repeats its request as fast as it is answered and counts the answers:
//! served, refused by a limit (busy -32009, a too-old proof 2006, an invalid dry run 3000, HTTP
//! 429 or a closed connection), or failed otherwise. A failure is what a limit should have
//! prevented. Attackers speak HTTP/1.1 and WebSocket over raw sockets, each from a loopback
//! address of its own (127.0.1.x), on two low-priority threads: as attackers on other machines,
//! they meet the node's per-address limits one by one and leave its CPU to it.

// A load generator: its counters cannot overflow in any run that finishes.
#![allow(clippy::arithmetic_side_effects)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use altan_primitives::{Action, Address, SecretKey, Transaction, blake3};
use anyhow::Context;
use clap::{Args, ValueEnum};
use parity_scale_codec::Encode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::client;
use crate::interface::{ContractInterface, encode_arguments};
use crate::rpc::AltanApiClient;
use crate::rpc::error::{BUSY, EXECUTION_INVALID, PROOF_TOO_OLD};
use crate::rpc::types::{DryRunRequest, HexBytes, QueryRequest};

/// An attack on free work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Attack {
    /// Queries of a contract that calls itself 63 times (64 instances each).
    Queries,
    /// Dry runs deploying distinct 120 KiB contracts (each compiled) from unfunded addresses.
    DryRuns,
    /// WebSocket sessions opened and held silent (answering no ping), eight per client.
    Websockets,
    /// Whole blocks with their transactions.
    Blocks,
    /// Events of the newest 1,000 blocks.
    Events,
    /// State proofs of the first block.
    Proofs,
}

/// Attack options of `altan bench`.
#[derive(Debug, Clone, Args)]
pub struct AttackArgs {
    /// Attacks to run while the honest load is measured (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub attack: Vec<Attack>,
    /// Attacking clients per attack.
    #[arg(long, default_value_t = 40)]
    pub attackers: usize,
    /// The recurse contract's Wasm, for the query and dry-run attacks (built by
    /// `./x contract build contracts/recurse`).
    #[arg(long, env = "ALTAN_RECURSE_WASM")]
    pub recurse_wasm: Option<PathBuf>,
}

/// How one attack's requests were answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Served.
    pub served: u64,
    /// Refused by a limit.
    pub refused: u64,
    /// Failed otherwise.
    pub failed: u64,
}

/// Attacks in progress, on a runtime of their own.
pub struct Attacking {
    stop: Arc<AtomicBool>,
    tasks: Vec<(Attack, JoinHandle<Tally>)>,
    runtime: tokio::runtime::Runtime,
}

/// Error codes that are a limit's refusal (or, for a dry run, a rule's: an unfunded sender
/// below the minimum gas price).
const REFUSALS: [i32; 3] = [BUSY, PROOF_TOO_OLD, EXECUTION_INVALID];

/// The loopback address attacker `n` connects from (127.0.1.1, 127.0.1.2, ...), so that the
/// node's per-address limits see the attackers as the separate machines they would be, apart
/// from the honest client on 127.0.0.1.
fn source(attacker: usize) -> IpAddr {
    let (high, low) = (attacker / 250, attacker % 250);
    IpAddr::V4(Ipv4Addr::new(127, 0, 1 + high as u8, 1 + low as u8))
}

/// A new connection to `server` from `source`.
async fn connect(source: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(server).await
}

/// One JSON-RPC call over a new HTTP/1.1 connection from `source`, classified.
async fn call(source: IpAddr, server: SocketAddr, method: &str, params: Value) -> Answer {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let exchange = async {
        let mut stream = connect(source, server).await?;
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let Ok(response) = exchange.await else { return Answer::Refused };
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).unwrap_or_default();
    if status == "429" || status == "503" || response.is_empty() {
        return Answer::Refused;
    }
    let Some((_, body)) = text.split_once("\r\n\r\n") else { return Answer::Failed };
    let Ok(answer) = serde_json::from_str::<Value>(body) else { return Answer::Failed };
    match answer["error"]["code"].as_i64() {
        None if answer.get("result").is_some() => Answer::Served(answer["result"].clone()),
        Some(code) if REFUSALS.iter().any(|r| i64::from(*r) == code) => Answer::Refused,
        _ => Answer::Failed,
    }
}

/// How the node answered one request.
enum Answer {
    Served(Value),
    Refused,
    Failed,
}

impl Tally {
    fn count(&mut self, answer: &Answer) {
        match answer {
            Answer::Served(_) => self.served += 1,
            Answer::Refused => self.refused += 1,
            Answer::Failed => self.failed += 1,
        }
    }
}

/// Repeats a request until `stop` is set, counting the answers; `request` makes the method and
/// parameters of the `round`th request.
async fn hammer<F, Fut>(
    stop: Arc<AtomicBool>,
    source: IpAddr,
    server: SocketAddr,
    mut request: F,
) -> Tally
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = (&'static str, Value)>,
{
    let mut tally = Tally::default();
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let (method, params) = request(round).await;
        let answer = call(source, server, method, params).await;
        if matches!(answer, Answer::Refused) {
            // A refused client backs off a little, as one that reads the error would.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tally.count(&answer);
    }
    tally
}

/// A module with a custom section of `pad` bytes derived from `seed` appended: the same code
/// to run, a different code hash to compile.
fn padded(wasm: &[u8], seed: u64, pad: usize) -> Vec<u8> {
    let name = b"altan.pad";
    let mut payload = Vec::with_capacity(pad + 16);
    payload.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    payload.extend_from_slice(name);
    let fill = blake3(&seed.to_le_bytes());
    payload.extend(fill.as_bytes().iter().cycle().take(pad));
    let mut module = wasm.to_vec();
    module.push(0);
    let mut size = payload.len();
    loop {
        let byte = u8::try_from(size & 0x7f).unwrap_or(0);
        size >>= 7;
        module.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    module.extend(payload);
    module
}

/// What one attack needs to make its requests.
#[derive(Clone)]
struct Ammunition {
    query: Option<QueryRequest>,
    code: Vec<u8>,
    chain_id: u64,
}

impl Attacking {
    /// Starts `args.attack` against the node at `url`; `funder` deploys what they need. The
    /// attacks run on two threads of their own at a low priority, so that on a shared machine
    /// they take the CPU the node and the honest load leave, as attackers elsewhere would.
    pub async fn start(
        args: &AttackArgs,
        url: &str,
        funder: &SecretKey,
    ) -> anyhow::Result<Attacking> {
        let server: SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("{url} is not http://<ip>:<port>"))?;
        let rpc = client::http(url)?;
        let code = match &args.recurse_wasm {
            Some(path) => {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
            }
            None => Vec::new(),
        };
        let needs_code = args.attack.iter().any(|a| matches!(a, Attack::Queries | Attack::DryRuns));
        if needs_code && code.is_empty() {
            anyhow::bail!("--recurse-wasm is needed for the query and dry-run attacks");
        }
        let query = match args.attack.contains(&Attack::Queries) {
            true => Some(deploy_recurse(&rpc, funder, code.clone()).await?),
            false => None,
        };
        let ammunition = Ammunition { query, code, chain_id: rpc.chain_info().await?.chain_id };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("altan-attack")
            .on_thread_start(crate::work::lower_priority)
            .enable_all()
            .build()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut attacker = 0;
        for &attack in &args.attack {
            for _ in 0..args.attackers {
                attacker += 1;
                let (stop, ammunition) = (Arc::clone(&stop), ammunition.clone());
                let source = source(attacker);
                let seed = (attacker as u64) << 32;
                let task =
                    runtime.spawn(attack_with(attack, stop, source, server, ammunition, seed));
                tasks.push((attack, task));
            }
        }
        Ok(Attacking { stop, tasks, runtime })
    }

    /// Stops the attacks; returns each one's tally.
    pub async fn stop(self) -> Vec<(Attack, Tally)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut tallies: Vec<(Attack, Tally)> = Vec::new();
        for (attack, task) in self.tasks {
            let tally = task.await.unwrap_or_default();
            match tallies.iter_mut().find(|(a, _)| *a == attack) {
                Some((_, total)) => {
                    total.served += tally.served;
                    total.refused += tally.refused;
                    total.failed += tally.failed;
                }
                None => tallies.push((attack, tally)),
            }
        }
        self.runtime.shutdown_background();
        tallies
    }
}

/// One attacking client.
async fn attack_with(
    attack: Attack,
    stop: Arc<AtomicBool>,
    source: IpAddr,
    server: SocketAddr,
    ammunition: Ammunition,
    seed: u64,
) -> Tally {
    let ready = std::future::ready;
    match attack {
        Attack::Queries => {
            let Some(query) = ammunition.query else { return Tally::default() };
            let params = json!([query]);
            hammer(stop, source, server, |_| ready(("contract_query", params.clone()))).await
        }
        Attack::DryRuns => {
            let (code, chain_id) = (ammunition.code, ammunition.chain_id);
            hammer(stop, source, server, |round| {
                let request = dry_run_deploy(&code, chain_id, seed + round);
                ready(("tx_dryRun", json!([request])))
            })
            .await
        }
        Attack::Blocks => {
            let params = json!(["latest", true]);
            hammer(stop, source, server, |_| ready(("chain_getBlock", params.clone()))).await
        }
        Attack::Events => {
            hammer(stop, source, server, |_| async move {
                let head = match call(source, server, "chain_head", json!([])).await {
                    Answer::Served(header) => header["height"].as_u64().unwrap_or(0),
                    _ => 0,
                };
                let filter = json!({ "fromBlock": head.saturating_sub(999), "toBlock": head });
                ("chain_getEvents", json!([filter]))
            })
            .await
        }
        Attack::Proofs => {
            let params = json!([Address::ZERO, "0x00", 1]);
            hammer(stop, source, server, |_| ready(("state_getStorage", params.clone()))).await
        }
        Attack::Websockets => hold_websockets(source, server, stop).await,
    }
}

/// Deploys the recurse contract; returns the query that makes it call itself 63 times.
async fn deploy_recurse(
    rpc: &jsonrpsee::http_client::HttpClient,
    funder: &SecretKey,
    code: Vec<u8>,
) -> anyhow::Result<QueryRequest> {
    let interface = ContractInterface::from_wasm(&code)?;
    let salt = blake3(format!("attack {}", crate::now_ms()).as_bytes());
    let action = Action::Deploy { code, input: Vec::new(), value: 0, salt };
    let receipt = client::send(rpc, funder, action, client::GasSettings::default()).await?;
    let contract = receipt.contract_address.context("deploying the recurse contract failed")?;
    let method = interface.method("fan_out")?;
    let mut input =
        hex::decode(method.selector.as_deref().unwrap_or_default().trim_start_matches("0x"))?;
    input.extend(encode_arguments(method, &[("count".into(), json!(63))])?);
    Ok(QueryRequest { contract, input: HexBytes(input), from: None, gas: None, at: None })
}

/// A dry run deploying a distinct 120 KiB module from an unfunded address at gas price 0.
fn dry_run_deploy(code: &[u8], chain_id: u64, seed: u64) -> DryRunRequest {
    let code = padded(code, seed, (120 << 10) - code.len().min(120 << 10));
    let from = Address(blake3(&seed.to_be_bytes()).as_bytes()[..20].try_into().unwrap_or([0; 20]));
    let transaction = Transaction {
        chain_id,
        nonce: 0,
        gas_limit: 100_000_000,
        gas_price: 0,
        action: Action::Deploy { code, input: Vec::new(), value: 0, salt: blake3(b"attack") },
    };
    DryRunRequest { from: Some(from), transaction: HexBytes(transaction.encode()) }
}

/// Opens eight WebSocket sessions and holds them, silent (answering no ping), until `stop`,
/// opening again any that the server closed. Served counts sessions opened, refused the
/// handshakes the server turned away.
async fn hold_websockets(source: IpAddr, server: SocketAddr, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    let mut held: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // A session the server closed reads as the end of the stream; its pings are read and
        // left unanswered.
        held.retain(|stream| {
            let mut scratch = [0; 256];
            match stream.try_read(&mut scratch) {
                Ok(0) => false,
                Ok(_) => true,
                Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
            }
        });
        if held.len() < 8 {
            match open_websocket(source, server).await {
                Some(stream) => {
                    tally.served += 1;
                    held.push(stream);
                }
                None => tally.refused += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tally
}

/// A WebSocket handshake from `source`; the stream if the server switched protocols.
async fn open_websocket(source: IpAddr, server: SocketAddr) -> Option<TcpStream> {
    let mut stream = connect(source, server).await.ok()?;
    let handshake = format!(
        "GET / HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(handshake.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    let mut byte = [0; 1];
    while !response.ends_with(b"\r\n\r\n") && response.len() < 4_096 {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await {
            Ok(Ok(1)) => response.push(byte[0]),
            _ => return None,
        }
    }
    response.starts_with(b"HTTP/1.1 101").then_some(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_module_is_still_valid_and_runs_the_same_code() {
        let module = wat_module();
        for pad in [0, 1, 127, 128, 20_000] {
            let out = padded(&module, 7, pad);
            wasmparser::validate(&out).unwrap();
            assert!(out.len() > module.len() + pad);
            assert!(out.starts_with(&module), "the module itself is unchanged");
            if pad > 0 {
                assert_ne!(padded(&module, 8, pad), out, "another seed, another code hash");
            }
        }
    }

    /// The smallest module: the magic number and the version.
    fn wat_module() -> Vec<u8> {
        vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
    }
}
