//! `altan bench`: load a node with pre-signed token transfers from many accounts over RPC and
//! report the sustained rate, admission rate and submit-to-final latency beside L_sig, the
//! signature-recovery ceiling measured in the same run on this machine.
//!
//! Setup (not timed): the funding account deploys the token contract and gives each bench
//! account tokens and native balance for fees. Then every transfer is signed before the clock
//! starts, submitted in `tx_submitBatch` calls by several concurrent clients, and each
//! transaction's latency runs from the start of its batch's submission to the arrival of the
//! final-head notification of the block that includes it (over WebSocket).

// A load generator, not a state transition: its counters and timings cannot overflow in any run
// that finishes, and overflow checks stay on in release builds anyway.
#![allow(clippy::arithmetic_side_effects, clippy::cast_precision_loss)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use altan_primitives::{Action, Address, Hash, SecretKey, SignedTransaction, Transaction, blake3};
use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use jsonrpsee::core::client::SubscriptionClientT;
use parity_scale_codec::Encode;
use serde_json::json;

use super::RpcArgs;
use super::attack::{AttackArgs, Attacking};
use crate::client;
use crate::interface::{ContractInterface, encode_arguments};
use crate::keys::{KeyStore, default_dir};
use crate::rpc::AltanApiClient;
use crate::rpc::types::{BlockId, DryRunRequest, HeaderJson, HexBytes};

/// Options of `altan bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The node.
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// The funding account (a key name, or dev0..dev9).
    #[arg(long, default_value = "dev0")]
    pub from: String,
    /// The key directory.
    #[arg(long, env = "ALTAN_KEYS")]
    pub keys_dir: Option<PathBuf>,
    /// The token contract's Wasm (built by `./x contract build contracts/token`).
    #[arg(long, env = "ALTAN_TOKEN_WASM")]
    pub token_wasm: PathBuf,
    /// Sending accounts.
    #[arg(long, default_value_t = 256)]
    pub accounts: usize,
    /// Transfers to send.
    #[arg(long, default_value_t = 40_000)]
    pub transactions: usize,
    /// Transactions per `tx_submitBatch` call.
    #[arg(long, default_value_t = 250)]
    pub batch: usize,
    /// Concurrent submitting clients.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Offered rate in transactions per second (default: as fast as the node admits).
    #[arg(long)]
    pub rate: Option<u64>,
    /// The node's process id, to report its peak resident memory.
    #[arg(long)]
    pub node_pid: Option<u32>,
    /// Signatures recovered to measure L_sig.
    #[arg(long, default_value_t = 2_000)]
    pub lsig_samples: usize,
    /// Attacks on free work to run while the load is measured.
    #[command(flatten)]
    pub attack: AttackArgs,
}

/// Signature recoveries per second on one core, times the machine's cores (at most 2, the
/// reference machine's): L_sig as BENCHMARKS.md defines it.
fn measure_lsig(samples: usize) -> (f64, f64) {
    let key = crate::dev::dev_account_key(9);
    let signed: Vec<SignedTransaction> = (0..samples.max(1))
        .map(|nonce| {
            Transaction {
                chain_id: 0,
                nonce: nonce as u64,
                gas_limit: 1,
                gas_price: 1,
                action: Action::Transfer { to: Address::ZERO, value: 1 },
            }
            .sign(&key)
        })
        .collect();
    let started = Instant::now();
    let recovered = signed.iter().filter(|tx| tx.recover_sender().is_ok()).count();
    let per_core = recovered as f64 / started.elapsed().as_secs_f64();
    (per_core, per_core * 2.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn submit_all(
    rpc: &jsonrpsee::http_client::HttpClient,
    transactions: &[SignedTransaction],
) -> anyhow::Result<()> {
    for chunk in transactions.chunks(1_000) {
        let results =
            rpc.submit_batch(chunk.iter().map(|t| HexBytes(t.encode())).collect()).await?;
        if let Some(error) = results.iter().find_map(|r| r.error.clone()) {
            bail!("setup transaction refused: {} ({})", error.message, error.code);
        }
    }
    Ok(())
}

/// A committed block, asked again while the node is busy: an honest client retries a refusal.
async fn block_with_retries(
    rpc: &jsonrpsee::http_client::HttpClient,
    height: u64,
) -> anyhow::Result<Option<crate::rpc::types::BlockJson>> {
    let mut tries = 0;
    loop {
        match rpc.block(BlockId::Number(height), Some(false)).await {
            Ok(block) => return Ok(block),
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The token's `transfer`, ready to encode calls.
struct TokenTransfer {
    selector: Vec<u8>,
    method: crate::interface::Method,
}

impl TokenTransfer {
    fn input(&self, to: Address, value: u128) -> anyhow::Result<Vec<u8>> {
        let mut input = self.selector.clone();
        input.extend(encode_arguments(
            &self.method,
            &[("to".into(), json!(to.to_string())), ("value".into(), json!(value.to_string()))],
        )?);
        Ok(input)
    }
}

/// What the untimed setup leaves: a deployed token and funded senders.
struct Prepared {
    token: Address,
    transfer: TokenTransfer,
    transfer_gas: u64,
    gas_limit: u64,
    keys: Vec<SecretKey>,
}

/// Deploys the token and gives each bench account tokens and native balance for fees.
async fn prepare(
    args: &BenchArgs,
    rpc: &jsonrpsee::http_client::HttpClient,
    funder: &SecretKey,
    chain_id: u64,
) -> anyhow::Result<Prepared> {
    let code = std::fs::read(&args.token_wasm)
        .with_context(|| format!("reading {}", args.token_wasm.display()))?;
    let interface = ContractInterface::from_wasm(&code)?;
    let constructor = interface.constructor.as_ref().context("the token has no constructor")?;
    let input = encode_arguments(
        constructor,
        &[
            ("name".into(), json!("Bench")),
            ("symbol".into(), json!("BNC")),
            ("decimals".into(), json!("18")),
            ("supply".into(), json!((u128::MAX / 4).to_string())),
        ],
    )?;
    let salt = blake3(format!("bench {}", crate::now_ms()).as_bytes());
    let deploy = Action::Deploy { code, input, value: 0, salt };
    let deployed = client::send(rpc, funder, deploy, client::GasSettings::default()).await?;
    let token = deployed.contract_address.context("the token deployment failed")?;
    let method = interface.method("transfer")?.clone();
    let selector =
        hex::decode(method.selector.as_deref().unwrap_or_default().trim_start_matches("0x"))?;
    let transfer = TokenTransfer { selector, method };

    let first = rpc.account(funder.address(), None).await?;
    let mut nonce = first.pending_nonce.unwrap_or(first.nonce);
    let probe = Transaction {
        chain_id,
        nonce,
        gas_limit: 0,
        gas_price: 1,
        action: Action::Call {
            contract: token,
            input: transfer.input(funder.address(), 1)?,
            value: 0,
        },
    };
    let transfer_gas = rpc
        .estimate_gas(DryRunRequest {
            from: Some(funder.address()),
            transaction: HexBytes(probe.encode()),
        })
        .await?;
    let gas_limit = transfer_gas.saturating_mul(3) / 2;
    let per_account = args.transactions.div_ceil(args.accounts);
    let fee_budget = u128::from(gas_limit) * (per_account as u128 + 1);
    let keys: Vec<SecretKey> = (0..args.accounts).map(|_| crate::keys::generate()).collect();
    let mut setup = Vec::new();
    for key in &keys {
        for action in [
            Action::Transfer { to: key.address(), value: fee_budget },
            Action::Call {
                contract: token,
                input: transfer.input(key.address(), 1_000_000_000)?,
                value: 0,
            },
        ] {
            let gas_limit = gas_limit.max(50_000);
            setup.push(
                Transaction { chain_id, nonce, gas_limit, gas_price: 1, action }.sign(funder),
            );
            nonce += 1;
        }
    }
    submit_all(rpc, &setup).await?;
    if let Some(last) = setup.last() {
        client::wait_for_receipt(rpc, last.id(), Duration::from_secs(120)).await?;
    }
    Ok(Prepared { token, transfer, transfer_gas, gas_limit, keys })
}

/// Signs every transfer before the clock starts, interleaving senders so that every batch
/// carries many of them. Returns the ids and the encoded batches.
fn presign(
    args: &BenchArgs,
    prepared: &Prepared,
    chain_id: u64,
) -> anyhow::Result<(Vec<Hash>, Vec<Vec<HexBytes>>)> {
    let keys = &prepared.keys;
    let mut transactions = Vec::with_capacity(args.transactions);
    for i in 0..args.transactions {
        let to = keys[(i + 1) % args.accounts].address();
        let action = Action::Call {
            contract: prepared.token,
            input: prepared.transfer.input(to, 1)?,
            value: 0,
        };
        let nonce = (i / args.accounts) as u64;
        let gas_limit = prepared.gas_limit;
        let transaction = Transaction { chain_id, nonce, gas_limit, gas_price: 1, action };
        transactions.push(transaction.sign(&keys[i % args.accounts]));
    }
    let ids = transactions.iter().map(SignedTransaction::id).collect();
    let batches = transactions
        .chunks(args.batch)
        .map(|chunk| chunk.iter().map(|t| HexBytes(t.encode())).collect())
        .collect();
    Ok((ids, batches))
}

/// Final heads as they arrive: the height, the block's own timestamp and the arrival time.
type FinalHeads = Arc<Mutex<Vec<(u64, u64, Instant)>>>;

/// Records every final head from the subscription until the task is aborted.
async fn record_final_heads(
    ws: &jsonrpsee::ws_client::WsClient,
    progress: ProgressBar,
) -> anyhow::Result<(FinalHeads, tokio::task::JoinHandle<()>)> {
    let mut finals = ws
        .subscribe::<HeaderJson, _>(
            "chain_subscribeFinalHeads",
            jsonrpsee::rpc_params![],
            "chain_unsubscribeFinalHeads",
        )
        .await?;
    let heads: FinalHeads = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let heads = Arc::clone(&heads);
        tokio::spawn(async move {
            while let Some(Ok(header)) = finals.next().await {
                let at = Instant::now();
                progress.inc(0);
                if let Ok(mut heads) = heads.lock() {
                    heads.push((header.height, header.timestamp_ms, at));
                }
            }
        })
    };
    Ok((heads, recorder))
}

/// When each batch was sent and answered, and how many transactions were refused.
struct Submitted {
    batch_times: Vec<Option<(Instant, Instant)>>,
    refused: usize,
    admitted_at: Instant,
}

/// Submits the batches from `--concurrency` clients, at the offered rate if one is given.
async fn submit(
    args: &BenchArgs,
    batches: Vec<Vec<HexBytes>>,
    started: Instant,
) -> anyhow::Result<Submitted> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let batch_times = Arc::new(Mutex::new(vec![None; batches.len()]));
    let next = Arc::new(AtomicUsize::new(0));
    let batches = Arc::new(batches);
    let refused = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let rpc = client::http(&args.rpc.rpc)?;
        let (next, batches, batch_times, refused) = (
            Arc::clone(&next),
            Arc::clone(&batches),
            Arc::clone(&batch_times),
            Arc::clone(&refused),
        );
        let (rate, batch_len) = (args.rate, args.batch);
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(index) else { break };
                if let Some(rate) = rate {
                    let due =
                        started + Duration::from_secs_f64((index * batch_len) as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let sent = Instant::now();
                let bad = match rpc.submit_batch(batch.clone()).await {
                    Ok(results) => results.iter().filter(|r| r.error.is_some()).count(),
                    Err(_) => batch.len(),
                };
                if let Ok(mut times) = batch_times.lock() {
                    times[index] = Some((sent, Instant::now()));
                }
                refused.fetch_add(bad, Ordering::Relaxed);
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let batch_times = batch_times.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(Submitted {
        batch_times,
        refused: refused.load(Ordering::Relaxed),
        admitted_at: Instant::now(),
    })
}

/// Waits until `expected` of the transactions are final (or five minutes pass), mapping ids
/// to final blocks as their heads arrive. Returns when each one was seen final.
async fn wait_final(
    rpc: &jsonrpsee::http_client::HttpClient,
    ids: &[Hash],
    expected: usize,
    heads: &FinalHeads,
    progress: &ProgressBar,
) -> anyhow::Result<Vec<Option<Instant>>> {
    let index_of: HashMap<Hash, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut final_at = vec![None; ids.len()];
    let mut seen = std::collections::BTreeSet::new();
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while done < expected && Instant::now() < deadline {
        let pending: Vec<(u64, Instant)> = heads
            .lock()
            .map(|t| t.iter().filter(|h| !seen.contains(&h.0)).map(|h| (h.0, h.2)).collect())
            .unwrap_or_default();
        for (height, at) in pending {
            seen.insert(height);
            let Some(block) = block_with_retries(rpc, height).await? else { continue };
            for id in block.transaction_ids {
                if let Some(&i) = index_of.get(&id) {
                    final_at[i] = Some(at);
                    done += 1;
                }
            }
            progress.set_position(done as u64);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(final_at)
}

/// The gaps between consecutive blocks' timestamps made while the load ran (p50, p99, max):
/// what "blocks keep their interval" is checked against.
fn block_intervals(heads: &FinalHeads, from_ms: u64, to_ms: u64) -> (u64, u64, u64) {
    let mut stamps: Vec<(u64, u64)> =
        heads.lock().map(|h| h.iter().map(|h| (h.0, h.1)).collect()).unwrap_or_default();
    stamps.sort_unstable();
    stamps.dedup();
    let mut gaps: Vec<u64> = stamps
        .windows(2)
        .filter(|w| w[1].0 == w[0].0 + 1 && w[0].1 >= from_ms && w[1].1 <= to_ms)
        .map(|w| w[1].1.saturating_sub(w[0].1))
        .collect();
    gaps.sort_unstable();
    let at = |p: f64| gaps.get(((gaps.len().saturating_sub(1)) as f64 * p).round() as usize);
    (
        at(0.5).copied().unwrap_or(0),
        at(0.99).copied().unwrap_or(0),
        gaps.last().copied().unwrap_or(0),
    )
}

/// Runs the benchmark.
#[allow(clippy::print_stdout)]
pub async fn run(args: BenchArgs, json_mode: bool) -> anyhow::Result<()> {
    if args.accounts == 0 || args.transactions == 0 || args.batch == 0 || args.concurrency == 0 {
        bail!("--accounts, --transactions, --batch and --concurrency must be positive");
    }
    let rpc = client::http(&args.rpc.rpc)?;
    let ws = client::ws(&args.rpc.rpc).await?;
    let funder =
        KeyStore::new(args.keys_dir.clone().unwrap_or_else(default_dir)).load(&args.from)?;
    let chain_id = rpc.chain_info().await?.chain_id;

    let (per_core, lsig) = measure_lsig(args.lsig_samples);
    if !json_mode {
        println!("L_sig: {lsig:.0} recoveries/s (2 x {per_core:.0} on one core)");
    }
    let prepared = prepare(&args, &rpc, &funder, chain_id).await?;
    let (ids, batches) = presign(&args, &prepared, chain_id)?;

    let progress =
        if json_mode { ProgressBar::hidden() } else { ProgressBar::new(args.transactions as u64) };
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} final ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (heads, recorder) = record_final_heads(&ws, progress.clone()).await?;
    let attacking = match args.attack.attack.is_empty() {
        true => None,
        false => Some(Attacking::start(&args.attack, &args.rpc.rpc, &funder).await?),
    };
    let (started, started_ms) = (Instant::now(), crate::now_ms());
    let submitted = submit(&args, batches, started).await?;
    let expected = ids.len().saturating_sub(submitted.refused);
    let final_at = wait_final(&rpc, &ids, expected, &heads, &progress).await?;
    let finished_ms = crate::now_ms();
    progress.finish_and_clear();
    recorder.abort();
    let attacks = match attacking {
        Some(attacking) => attacking.stop().await,
        None => Vec::new(),
    };

    let mut latencies = Vec::with_capacity(ids.len());
    let mut last_final = started;
    for (i, at) in final_at.iter().enumerate() {
        if let (Some(at), Some(Some((start, _)))) = (at, submitted.batch_times.get(i / args.batch))
        {
            latencies.push(at.saturating_duration_since(*start));
            last_final = last_final.max(*at);
        }
    }
    latencies.sort();
    let mut submit_calls: Vec<Duration> =
        submitted.batch_times.iter().flatten().map(|(sent, answered)| *answered - *sent).collect();
    submit_calls.sort();
    let measured = Measured {
        sent: ids.len(),
        refused: submitted.refused,
        finalized: latencies.len(),
        sustained: latencies.len() as f64
            / last_final.saturating_duration_since(started).as_secs_f64().max(1e-9),
        admission: (ids.len() - submitted.refused) as f64
            / submitted.admitted_at.duration_since(started).as_secs_f64().max(1e-9),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        submit_calls: (
            percentile(&submit_calls, 0.50),
            percentile(&submit_calls, 0.99),
            submit_calls.last().copied().unwrap_or_default(),
        ),
        intervals: block_intervals(&heads, started_ms, finished_ms),
        lsig,
        transfer_gas: prepared.transfer_gas,
        rss: args.node_pid.and_then(peak_rss_mib),
        attacks,
    };
    measured.print(&args, json_mode);
    if measured.finalized < expected {
        bail!(
            "only {} of {expected} admitted transactions became final in time",
            measured.finalized
        );
    }
    Ok(())
}

/// The figures of one run.
struct Measured {
    sent: usize,
    refused: usize,
    finalized: usize,
    sustained: f64,
    admission: f64,
    p50: Duration,
    p99: Duration,
    /// How long a `tx_submitBatch` call took (the part of the latency before admission): p50,
    /// p99, max.
    submit_calls: (Duration, Duration, Duration),
    /// Block intervals while loaded, in ms: p50, p99, max.
    intervals: (u64, u64, u64),
    lsig: f64,
    transfer_gas: u64,
    rss: Option<f64>,
    attacks: Vec<(super::attack::Attack, super::attack::Tally)>,
}

impl Measured {
    #[allow(clippy::print_stdout)]
    fn print(&self, args: &BenchArgs, json_mode: bool) {
        let (lsig, sustained, admission) = (self.lsig, self.sustained, self.admission);
        let (p50, p99) = (self.p50.as_secs_f64() * 1e3, self.p99.as_secs_f64() * 1e3);
        let (interval_p50, interval_p99, interval_max) = self.intervals;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (call_p50, call_p99, call_max) =
            (ms(self.submit_calls.0), ms(self.submit_calls.1), ms(self.submit_calls.2));
        if json_mode {
            let report = json!({
                "transactions": self.sent,
                "refused": self.refused,
                "finalized": self.finalized,
                "accounts": args.accounts,
                "batch": args.batch,
                "concurrency": args.concurrency,
                "offeredRate": args.rate,
                "sustainedTps": sustained.round(),
                "admissionTps": admission.round(),
                "latencyP50Ms": p50,
                "latencyP99Ms": p99,
                "submitCallP50Ms": call_p50,
                "submitCallP99Ms": call_p99,
                "submitCallMaxMs": call_max,
                "blockIntervalP50Ms": interval_p50,
                "blockIntervalP99Ms": interval_p99,
                "blockIntervalMaxMs": interval_max,
                "lsig": lsig.round(),
                "sustainedOverLsig": sustained / lsig,
                "admissionOverLsig": admission / lsig,
                "transferGas": self.transfer_gas,
                "nodePeakRssMiB": self.rss,
                "attacks": self.attacks.iter().map(|(attack, tally)| json!({
                    "attack": format!("{attack:?}"),
                    "served": tally.served,
                    "refused": tally.refused,
                    "failed": tally.failed,
                })).collect::<Vec<_>>(),
            });
            println!("{report}");
            return;
        }
        println!(
            "transfers        {} sent, {} refused, {} final",
            self.sent, self.refused, self.finalized
        );
        println!("sustained        {sustained:.0} tx/s ({:.2} x L_sig)", sustained / lsig);
        println!("admission        {admission:.0} tx/s ({:.2} x L_sig)", admission / lsig);
        println!("submit to final  p50 {p50:.1} ms, p99 {p99:.1} ms");
        println!(
            "submit call      p50 {call_p50:.1} ms, p99 {call_p99:.1} ms, max {call_max:.1} ms"
        );
        println!(
            "block interval   p50 {interval_p50} ms, p99 {interval_p99} ms, max {interval_max} ms"
        );
        println!("L_sig            {lsig:.0}/s");
        if let Some(rss) = self.rss {
            println!("node peak RSS    {rss:.0} MiB");
        }
        for (attack, tally) in &self.attacks {
            println!(
                "attack {attack:?}: {} served, {} refused by a limit, {} failed",
                tally.served, tally.refused, tally.failed
            );
        }
    }
}
