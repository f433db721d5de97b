//! The example contracts on the runtime: real token transfers per second on one core (sender
//! already recovered, in-memory state), the gas of one transfer, and each contract's Wasm size.
//!
//! `cargo bench -p altan-tests --bench contracts`
#![allow(missing_docs, clippy::print_stdout, clippy::arithmetic_side_effects)]

use std::sync::Arc;

use altan_primitives::{Action, Address, ExecutionStatus, SignedTransaction, Transaction};
use altan_tests::chain::{CHAIN_ID, Chain, GAS_PRICE, account, call_input, key};
use altan_tests::wasm;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const BLOCK: usize = 1_000;

fn token_transfers(c: &mut Criterion) {
    for (name, code) in wasm::ALL {
        println!("wasm size of {name}: {} bytes", code.len());
    }
    let mut chain = Chain::new();
    let token = chain.deploy_ok(
        0,
        wasm::get("token"),
        (String::from("Altan"), String::from("ALT"), 18u8, u128::MAX),
    );
    let nonce = chain.account(&account(0)).nonce;
    let txs: Vec<SignedTransaction> = (0..BLOCK as u64)
        .map(|i| {
            let to = Address([(i % 251) as u8; 20]);
            let action = Action::Call {
                contract: token,
                input: call_input("transfer", (to, 1u128)),
                value: 0,
            };
            Transaction {
                chain_id: CHAIN_ID,
                nonce: nonce + i,
                gas_limit: 200_000,
                gas_price: GAS_PRICE,
                action,
            }
            .sign(&key(0))
        })
        .collect();
    let parent = Arc::new(chain.state.snapshot(chain.height).expect("latest"));
    let mut context = chain.context();
    context.gas_limit = u64::MAX;
    let sender = account(0);

    let mut check = chain.runtime.begin_block(parent.clone(), context.clone());
    for tx in &txs {
        let receipt = check.apply_recovered(tx, sender).expect("valid");
        assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    }
    println!("gas of one token transfer (sdk token): {}", check.receipts()[0].gas_used);

    let mut group = c.benchmark_group("sdk_token_transfer");
    group.throughput(Throughput::Elements(BLOCK as u64));
    group.sample_size(20);
    group.bench_function("without_signature", |b| {
        b.iter_batched(
            || chain.runtime.begin_block(parent.clone(), context.clone()),
            |mut executor| {
                for tx in &txs {
                    executor.apply_recovered(tx, sender).expect("valid");
                }
                executor.finish().expect("block finishes")
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, token_transfers);
criterion_main!(benches);
