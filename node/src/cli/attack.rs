//! `altan bench --attack`: the attacks of issue #16 on free work, each from many clients, run
//! while the benchmark's honest load is measured, so that what they cost honest users shows in
//! its figures (submit-to-final latency, sustained rate, the node's memory).
//!
//! Each attacking client repeats its request as fast as it is answered and counts the answers:
//! served, refused by a limit (busy -32009, a too-old proof 2006, an invalid dry run 3000, HTTP
//! 429 or a closed connection), or failed otherwise. A failure is what a limit should have
//! prevented.

// A load generator: its counters cannot overflow in any run that finishes.
#![allow(clippy::arithmetic_side_effects)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use altan_primitives::{Action, Address, SecretKey, Transaction, blake3};
use anyhow::Context;
use clap::{Args, ValueEnum};
use jsonrpsee::core::ClientError;
use parity_scale_codec::Encode;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::client;
use crate::interface::{ContractInterface, encode_arguments};
use crate::rpc::AltanApiClient;
use crate::rpc::error::{BUSY, EXECUTION_INVALID, PROOF_TOO_OLD};
use crate::rpc::types::{BlockId, DryRunRequest, EventFilter, HexBytes, QueryRequest};

/// An attack on free work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Attack {
    /// Queries of a contract that calls itself 63 times (64 instances each).
    Queries,
    /// Dry runs deploying distinct 120 KiB contracts (each compiled) from unfunded addresses.
    DryRuns,
    /// WebSocket sessions opened and held idle, eight per client.
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

/// Attacks in progress.
pub struct Attacking {
    stop: Arc<AtomicBool>,
    tasks: Vec<(Attack, JoinHandle<Tally>)>,
}

/// Whether an error is a limit's refusal (or, for a dry run, a rule's: an unfunded sender below
/// the minimum gas price).
fn refused(error: &ClientError) -> bool {
    match error {
        ClientError::Call(object) => {
            [BUSY, PROOF_TOO_OLD, EXECUTION_INVALID].contains(&object.code())
        }
        // HTTP 429, or a connection the server closed at its limit.
        ClientError::Transport(_) | ClientError::RestartNeeded(_) => true,
        _ => false,
    }
}

/// Repeats `request` until `stop` is set, counting the answers.
async fn hammer<T, F, Fut>(stop: Arc<AtomicBool>, mut request: F) -> Tally
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut tally = Tally::default();
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        match request(round).await {
            Ok(_) => tally.served += 1,
            Err(error) if refused(&error) => {
                tally.refused += 1;
                // A refused client backs off a little, as one that reads the error would.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(_) => tally.failed += 1,
        }
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

impl Attacking {
    /// Starts `args.attack` against the node at `url`; `funder` deploys what they need.
    pub async fn start(
        args: &AttackArgs,
        url: &str,
        funder: &SecretKey,
    ) -> anyhow::Result<Attacking> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let rpc = client::http(url)?;
        let chain_id = rpc.chain_info().await?.chain_id;
        let recurse = match &args.recurse_wasm {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        };
        for &attack in &args.attack {
            let query = match attack {
                Attack::Queries => {
                    let code = recurse.clone().context("--recurse-wasm is needed for queries")?;
                    Some(deploy_recurse(&rpc, funder, code).await?)
                }
                _ => None,
            };
            if attack == Attack::DryRuns && recurse.is_none() {
                anyhow::bail!("--recurse-wasm is needed for dry runs");
            }
            for attacker in 0..args.attackers {
                let rpc = client::http(url)?;
                let (stop, query, code) = (Arc::clone(&stop), query.clone(), recurse.clone());
                let url = url.to_string();
                let seed = (attacker as u64) << 32;
                let task = tokio::spawn(async move {
                    match attack {
                        Attack::Queries => {
                            let Some(request) = query else { return Tally::default() };
                            hammer(stop, |_| rpc.query(request.clone())).await
                        }
                        Attack::DryRuns => {
                            let code = code.unwrap_or_default();
                            hammer(stop, |round| {
                                rpc.dry_run(dry_run_deploy(&code, chain_id, seed + round))
                            })
                            .await
                        }
                        Attack::Websockets => hold_websockets(&url, stop).await,
                        Attack::Blocks => {
                            hammer(stop, |_| rpc.block(BlockId::Latest, Some(true))).await
                        }
                        Attack::Events => {
                            hammer(stop, |_| async {
                                let head = rpc.head().await?.height;
                                let filter = EventFilter {
                                    from_block: Some(head.saturating_sub(999)),
                                    to_block: Some(head),
                                    ..EventFilter::default()
                                };
                                rpc.events(filter).await
                            })
                            .await
                        }
                        Attack::Proofs => {
                            let first = Some(BlockId::Number(1));
                            hammer(stop, |_| rpc.storage(Address::ZERO, HexBytes(vec![0]), first))
                                .await
                        }
                    }
                });
                tasks.push((attack, task));
            }
        }
        Ok(Attacking { stop, tasks })
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
        tallies
    }
}

/// Deploys the recurse contract; returns the query that makes it call itself 63 times.
async fn deploy_recurse(
    rpc: &jsonrpsee::http_client::HttpClient,
    funder: &SecretKey,
    code: Vec<u8>,
) -> anyhow::Result<QueryRequest> {
    let interface = ContractInterface::from_wasm(&code)?;
    let salt = blake3(format!("attack {}", crate::producer::now_ms()).as_bytes());
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

/// Opens eight WebSocket sessions and holds them until `stop`, opening again any that closed or
/// were refused. Served counts sessions opened, refused the sessions the server turned away.
async fn hold_websockets(url: &str, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    let mut held = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        held.retain(|session: &jsonrpsee::ws_client::WsClient| session.is_connected());
        if held.len() < 8 {
            match client::ws(url).await {
                Ok(session) => {
                    tally.served += 1;
                    held.push(session);
                }
                Err(_) => tally.refused += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tally
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
