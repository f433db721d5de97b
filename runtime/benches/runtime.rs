//! Runtime throughput: token-like transfers through the VM, with and without signature recovery.
//!
//! `cargo bench -p altan-runtime --bench runtime`
#![allow(missing_docs, clippy::arithmetic_side_effects, clippy::print_stdout, dead_code)]

#[path = "../tests/it/common.rs"]
mod common;

use std::sync::Arc;

use altan_primitives::{Action, Address, ExecutionStatus, SignedTransaction, Transaction};
use altan_runtime::exec::{BlockContext, Runtime};
use altan_runtime::state::{Account, MemoryStore, Snapshot, State, StateChanges, StateKey};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use parity_scale_codec::Encode;

use common::*;

const BLOCK: usize = 1_000;

/// Benchmarks applying `txs` as one block on `parent`: with `sender` given, as the mempool
/// would after checking signatures; without, recovering each sender.
fn bench_block(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    runtime: &Runtime,
    parent: &Arc<Snapshot<MemoryStore>>,
    context: &BlockContext,
    txs: &[SignedTransaction],
    sender: Option<Address>,
) {
    group.bench_function(name, |b| {
        b.iter_batched(
            || runtime.begin_block(parent.clone(), context.clone()),
            |mut executor| {
                for tx in txs {
                    match sender {
                        Some(sender) => executor.apply_recovered(tx, sender),
                        None => executor.apply(tx),
                    }
                    .expect("valid");
                }
                executor.finish().expect("block finishes")
            },
            BatchSize::PerIteration,
        )
    });
}

fn transfers(c: &mut Criterion) {
    let mut chain = Chain::new();
    let alice = key(0);
    let token = chain
        .deploy_with(&alice, token(), u64::MAX.to_le_bytes().to_vec())
        .contract_address
        .expect("token deployed");
    let start_nonce = chain.nonce(&alice);
    let txs: Vec<SignedTransaction> = (0..BLOCK as u64)
        .map(|i| {
            let to = Address([(i % 251) as u8; 20]);
            Transaction {
                chain_id: CHAIN_ID,
                nonce: start_nonce + i,
                gas_limit: 100_000,
                gas_price: GAS_PRICE,
                action: Action::Call { contract: token, input: transfer_input(&to, 1), value: 0 },
            }
            .sign(&alice)
        })
        .collect();
    let parent = Arc::new(chain.state.snapshot(chain.height).expect("snapshot"));
    let context = BlockContext::new(CHAIN_ID, chain.height + 1, 0, Address([0xee; 20]), u64::MAX);
    let sender = alice.address();

    // Check once that the benchmark measures successful transfers.
    let mut executor = chain.runtime.begin_block(parent.clone(), context.clone());
    for tx in &txs {
        let receipt = executor.apply_recovered(tx, sender).expect("valid");
        assert_eq!(receipt.status, ExecutionStatus::Success);
        assert_eq!(receipt.events.len(), 1);
    }
    println!("gas of one token transfer: {}", executor.receipts()[0].gas_used);

    let mut group = c.benchmark_group("token_transfer");
    group.throughput(Throughput::Elements(BLOCK as u64));
    group.sample_size(20);
    bench_block(
        &mut group,
        "without_signature",
        &chain.runtime,
        &parent,
        &context,
        &txs,
        Some(sender),
    );
    bench_block(&mut group, "with_signature", &chain.runtime, &parent, &context, &txs, None);
    group.finish();
}

fn native_transfers(c: &mut Criterion) {
    let chain = Chain::new();
    let alice = key(0);
    let txs: Vec<SignedTransaction> = (0..BLOCK as u64)
        .map(|i| {
            Transaction {
                chain_id: CHAIN_ID,
                nonce: i,
                gas_limit: 100_000,
                gas_price: GAS_PRICE,
                action: Action::Transfer { to: Address([(i % 251) as u8; 20]), value: 1 },
            }
            .sign(&alice)
        })
        .collect();
    let parent = Arc::new(chain.state.snapshot(chain.height).expect("snapshot"));
    let context = BlockContext::new(CHAIN_ID, 1, 0, Address([0xee; 20]), u64::MAX);
    let sender = alice.address();
    let mut group = c.benchmark_group("native_transfer");
    group.throughput(Throughput::Elements(BLOCK as u64));
    group.sample_size(20);
    bench_block(
        &mut group,
        "without_signature",
        &chain.runtime,
        &parent,
        &context,
        &txs,
        Some(sender),
    );
    group.finish();
}

/// The state root of a block that touches 10,000 accounts of a state holding 100,000.
fn state_root(c: &mut Criterion) {
    let address = |i: u64| {
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        Address(bytes)
    };
    let account = |balance: u128| Some(Account { nonce: 1, balance, code_hash: None }.encode());
    let state = State::open(Arc::new(MemoryStore::new())).expect("state");
    let genesis: StateChanges =
        (0..100_000u64).map(|i| (StateKey::account(&address(i)), account(1_000))).collect();
    state.apply(0, &genesis).expect("genesis");
    // Every tenth account changes, so the 10,000 touched accounts spread over the whole tree.
    let block: StateChanges =
        (0..10_000u64).map(|i| (StateKey::account(&address(i * 10)), account(999))).collect();
    // Ten thousand new accounts: each insert splits a leaf, the costlier path.
    let fresh: StateChanges =
        (100_000..110_000u64).map(|i| (StateKey::account(&address(i)), account(5))).collect();
    let mut group = c.benchmark_group("state_root_10k_of_100k_accounts");
    group.sample_size(30);
    group.bench_function("prepare", |b| b.iter(|| state.prepare(1, &block).expect("prepare")));
    group
        .bench_function("prepare_fresh", |b| b.iter(|| state.prepare(1, &fresh).expect("prepare")));
    group.finish();
}

criterion_group!(benches, transfers, native_transfers, state_root);
criterion_main!(benches);
