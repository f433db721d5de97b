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
    let info = rpc.chain_info().await?;

    let (per_core, lsig) = measure_lsig(args.lsig_samples);
    if !json_mode {
        println!("L_sig: {lsig:.0} recoveries/s (2 x {per_core:.0} on one core)");
    }

    // Setup: deploy the token, fund the accounts with tokens and native balance.
    let code = std::fs::read(&args.token_wasm)
        .with_context(|| format!("reading {}", args.token_wasm.display()))?;
    let interface = ContractInterface::from_wasm(&code)?;
    let constructor = interface.constructor.as_ref().context("the token has no constructor")?;
    let supply = u128::MAX / 4;
    let input = encode_arguments(
        constructor,
        &[
            ("name".into(), json!("Bench")),
            ("symbol".into(), json!("BNC")),
            ("decimals".into(), json!("18")),
            ("supply".into(), json!(supply.to_string())),
        ],
    )?;
    let salt = blake3(format!("bench {}", crate::producer::now_ms()).as_bytes());
    let deploy = client::send(
        &rpc,
        &funder,
        Action::Deploy { code, input, value: 0, salt },
        client::GasSettings::default(),
    )
    .await?;
    let token = deploy.contract_address.context("the token deployment failed")?;
    let transfer = interface.method("transfer")?;
    let selector =
        hex::decode(transfer.selector.as_deref().unwrap_or_default().trim_start_matches("0x"))?;
    let call_input = |to: Address, value: u128| -> anyhow::Result<Vec<u8>> {
        let mut input = selector.clone();
        input.extend(encode_arguments(
            transfer,
            &[("to".into(), json!(to.to_string())), ("value".into(), json!(value.to_string()))],
        )?);
        Ok(input)
    };

    let keys: Vec<SecretKey> = (0..args.accounts).map(|_| crate::keys::generate()).collect();
    let per_account = args.transactions.div_ceil(args.accounts);
    let first = rpc.account(funder.address(), None).await?;
    let mut nonce = first.pending_nonce.unwrap_or(first.nonce);
    let estimate = |action: Action| Transaction {
        chain_id: info.chain_id,
        nonce,
        gas_limit: 0,
        gas_price: 1,
        action,
    };
    let probe = estimate(Action::Call {
        contract: token,
        input: call_input(funder.address(), 1)?,
        value: 0,
    });
    let transfer_gas = rpc
        .estimate_gas(DryRunRequest {
            from: Some(funder.address()),
            transaction: HexBytes(probe.encode()),
        })
        .await?;
    let gas_limit = transfer_gas.saturating_mul(3) / 2;
    let fee_budget = u128::from(gas_limit) * (per_account as u128 + 1);
    let mut setup = Vec::new();
    for key in &keys {
        for action in [
            Action::Transfer { to: key.address(), value: fee_budget },
            Action::Call {
                contract: token,
                input: call_input(key.address(), 1_000_000_000)?,
                value: 0,
            },
        ] {
            setup.push(
                Transaction {
                    chain_id: info.chain_id,
                    nonce,
                    gas_limit: gas_limit.max(50_000),
                    gas_price: 1,
                    action,
                }
                .sign(&funder),
            );
            nonce += 1;
        }
    }
    submit_all(&rpc, &setup).await?;
    if let Some(last) = setup.last() {
        client::wait_for_receipt(&rpc, last.id(), Duration::from_secs(120)).await?;
    }

    // Pre-sign, interleaving senders so that every batch carries many of them.
    let mut transactions = Vec::with_capacity(args.transactions);
    for i in 0..args.transactions {
        let sender = &keys[i % args.accounts];
        let to = keys[(i + 1) % args.accounts].address();
        transactions.push(
            Transaction {
                chain_id: info.chain_id,
                nonce: (i / args.accounts) as u64,
                gas_limit,
                gas_price: 1,
                action: Action::Call { contract: token, input: call_input(to, 1)?, value: 0 },
            }
            .sign(sender),
        );
    }
    let ids: Vec<Hash> = transactions.iter().map(SignedTransaction::id).collect();
    let batches: Vec<Vec<HexBytes>> = transactions
        .chunks(args.batch)
        .map(|chunk| chunk.iter().map(|t| HexBytes(t.encode())).collect())
        .collect();
    drop(transactions);

    let progress =
        if json_mode { ProgressBar::hidden() } else { ProgressBar::new(args.transactions as u64) };
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} final ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    // Final heads, timed on arrival.
    let mut finals = ws
        .subscribe::<HeaderJson, _>(
            "chain_subscribeFinalHeads",
            jsonrpsee::rpc_params![],
            "chain_unsubscribeFinalHeads",
        )
        .await?;
    let final_times: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let final_times = Arc::clone(&final_times);
        let progress = progress.clone();
        tokio::spawn(async move {
            while let Some(Ok(header)) = finals.next().await {
                let at = Instant::now();
                progress.inc(0);
                if let Ok(mut times) = final_times.lock() {
                    times.push((header.height, at));
                }
            }
        })
    };

    let attacking = match args.attack.attack.is_empty() {
        true => None,
        false => Some(Attacking::start(&args.attack, &args.rpc.rpc, &funder).await?),
    };
    let started = Instant::now();
    let batch_starts: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; batches.len()]));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let batches = Arc::new(batches);
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let rpc = client::http(&args.rpc.rpc)?;
        let (next, batches, batch_starts, refused) = (
            Arc::clone(&next),
            Arc::clone(&batches),
            Arc::clone(&batch_starts),
            Arc::clone(&refused),
        );
        let rate = args.rate;
        let batch_len = args.batch;
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(batch) = batches.get(index) else { break };
                if let Some(rate) = rate {
                    let due =
                        started + Duration::from_secs_f64((index * batch_len) as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                if let Ok(mut starts) = batch_starts.lock() {
                    starts[index] = Some(Instant::now());
                }
                match rpc.submit_batch(batch.clone()).await {
                    Ok(results) => {
                        let bad = results.iter().filter(|r| r.error.is_some()).count();
                        refused.fetch_add(bad, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(_) => {
                        refused.fetch_add(batch.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let admitted_at = Instant::now();
    let refused = refused.load(std::sync::atomic::Ordering::Relaxed);

    // Wait for every admitted transaction to be final, mapping ids to blocks as they come.
    let index_of: HashMap<Hash, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut final_at: Vec<Option<Instant>> = vec![None; ids.len()];
    let mut seen_heights = std::collections::BTreeSet::new();
    let expected = ids.len().saturating_sub(refused);
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while done < expected && Instant::now() < deadline {
        let pending: Vec<(u64, Instant)> = final_times
            .lock()
            .map(|t| t.iter().filter(|(h, _)| !seen_heights.contains(h)).copied().collect())
            .unwrap_or_default();
        for (height, at) in pending {
            seen_heights.insert(height);
            let Some(block) = block_with_retries(&rpc, height).await? else { continue };
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
    progress.finish_and_clear();
    recorder.abort();
    let attacks = match attacking {
        Some(attacking) => attacking.stop().await,
        None => Vec::new(),
    };

    let starts = batch_starts.lock().map(|s| s.clone()).unwrap_or_default();
    let mut latencies = Vec::with_capacity(ids.len());
    let mut last_final = started;
    for (i, at) in final_at.iter().enumerate() {
        if let (Some(at), Some(Some(start))) = (at, starts.get(i / args.batch)) {
            latencies.push(at.saturating_duration_since(*start));
            last_final = last_final.max(*at);
        }
    }
    latencies.sort();
    let finalized = latencies.len();
    let sustained =
        finalized as f64 / last_final.saturating_duration_since(started).as_secs_f64().max(1e-9);
    let admission =
        (ids.len() - refused) as f64 / admitted_at.duration_since(started).as_secs_f64().max(1e-9);
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let rss = args.node_pid.and_then(peak_rss_mib);
    let report = json!({
        "transactions": ids.len(),
        "refused": refused,
        "finalized": finalized,
        "accounts": args.accounts,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "offeredRate": args.rate,
        "sustainedTps": sustained.round(),
        "admissionTps": admission.round(),
        "latencyP50Ms": p50.as_secs_f64() * 1e3,
        "latencyP99Ms": p99.as_secs_f64() * 1e3,
        "lsig": lsig.round(),
        "sustainedOverLsig": sustained / lsig,
        "admissionOverLsig": admission / lsig,
        "transferGas": transfer_gas,
        "nodePeakRssMiB": rss,
        "attacks": attacks.iter().map(|(attack, tally)| json!({
            "attack": format!("{attack:?}"),
            "served": tally.served,
            "refused": tally.refused,
            "failed": tally.failed,
        })).collect::<Vec<_>>(),
    });
    if json_mode {
        println!("{report}");
    } else {
        println!("transfers        {} sent, {refused} refused, {finalized} final", ids.len());
        println!("sustained        {sustained:.0} tx/s ({:.2} x L_sig)", sustained / lsig);
        println!("admission        {admission:.0} tx/s ({:.2} x L_sig)", admission / lsig);
        println!(
            "submit to final  p50 {:.1} ms, p99 {:.1} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        println!("L_sig            {lsig:.0}/s");
        if let Some(rss) = rss {
            println!("node peak RSS    {rss:.0} MiB");
        }
        for (attack, tally) in &attacks {
            println!(
                "attack {attack:?}: {} served, {} refused by a limit, {} failed",
                tally.served, tally.refused, tally.failed
            );
        }
    }
    if finalized < expected {
        bail!("only {finalized} of {expected} admitted transactions became final in time");
    }
    Ok(())
}
