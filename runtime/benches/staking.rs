//! The staking work at the end of a block: verifying the parent certificate and paying the
//! proposer and every voter. Its cost grows with the validators a block pays, not with their
//! delegators (the reward accumulator): the `delegators` cases check that.
//!
//! `cargo bench -p altan-runtime --bench staking`
#![allow(missing_docs, clippy::arithmetic_side_effects, clippy::print_stdout)]

use std::sync::Arc;

use altan_primitives::{
    Action, Certificate, ChainSpec, CommitSignature, GenesisAccount, GenesisValidator, SecretKey,
    SignedTransaction, StakingAction, StakingParams, Transaction, Vote, VoteKind,
};
use altan_runtime::exec::{BlockContext, Runtime};
use altan_runtime::state::{MemoryStore, State};
use altan_runtime::vm::VmConfig;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const CHAIN_ID: u64 = 3;

fn secret(tag: u8, i: u32) -> SecretKey {
    let mut bytes = [tag; 32];
    bytes[..4].copy_from_slice(&i.to_be_bytes());
    SecretKey::from_bytes(&bytes).expect("valid key")
}

/// A chain at height 1 with `validators` validators (all in the set) and `delegators`
/// accounts delegating to them round-robin, and the context of block 2 with a certificate of
/// every validator.
fn setup(validators: u32, delegators: u32) -> (Runtime, State<MemoryStore>, BlockContext) {
    let operators: Vec<SecretKey> = (0..validators).map(|i| secret(0x11, i)).collect();
    let consensus: Vec<SecretKey> = (0..validators).map(|i| secret(0x22, i)).collect();
    let holders: Vec<SecretKey> = (0..delegators).map(|i| secret(0x33, i)).collect();
    let spec = ChainSpec {
        name: "bench".into(),
        chain_id: CHAIN_ID,
        genesis_time_ms: 0,
        block_gas_limit: u64::MAX,
        epoch_length: 1_000,
        accounts: holders
            .iter()
            .map(|k| GenesisAccount { address: k.address(), balance: 1_000_000_000 })
            .collect(),
        validators: operators
            .iter()
            .zip(&consensus)
            .enumerate()
            .map(|(i, (op, key))| GenesisValidator {
                address: op.address(),
                consensus_key: key.public_key(),
                stake: 1_000_000 + i as u128,
                commission_bps: 500,
            })
            .collect(),
        staking: StakingParams {
            min_validator_stake: 1,
            max_validators: validators as u16,
            ..StakingParams::default()
        },
        min_gas_price: 0,
    };
    let state = State::open(Arc::new(MemoryStore::new())).expect("state");
    state.apply(0, &Runtime::genesis(&spec).expect("genesis")).expect("genesis commits");
    let runtime = Runtime::new(CHAIN_ID, VmConfig::default()).expect("engine");
    let set = altan_runtime::staking::validator_set(&state.snapshot(0).expect("kept"), 0)
        .expect("reads")
        .expect("epoch 0");

    // Block 1 carries no certificate; it bonds the delegators.
    let bonds: Vec<SignedTransaction> = holders
        .iter()
        .enumerate()
        .map(|(i, holder)| {
            Transaction {
                chain_id: CHAIN_ID,
                nonce: 0,
                gas_limit: 100_000,
                gas_price: 1,
                action: Action::Staking(StakingAction::Bond {
                    validator: operators[i % operators.len()].address(),
                    amount: 1_000,
                }),
            }
            .sign(holder)
        })
        .collect();
    let mut context = BlockContext::new(CHAIN_ID, 1, 1, set.validators[0].address, u64::MAX);
    context.parent_hash = spec.hash();
    let mut executor =
        runtime.begin_block(Arc::new(state.snapshot(0).expect("kept")), context.clone());
    for tx in &bonds {
        executor.apply(tx).expect("valid bond");
    }
    let outcome = executor.finish().expect("block 1");
    state.apply(1, &outcome.changes).expect("block 1 commits");
    let parent_hash = altan_primitives::blake3(b"block 1");

    let precommit = Vote {
        chain_id: CHAIN_ID,
        height: 1,
        round: 0,
        kind: VoteKind::Precommit,
        block_hash: Some(parent_hash),
    };
    let signatures = set
        .validators
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let key = consensus.iter().find(|k| k.public_key() == v.consensus_key).expect("key");
            CommitSignature {
                validator_index: index as u16,
                signature: precommit.clone().sign(key).signature,
            }
        })
        .collect();
    let mut next = BlockContext::new(
        CHAIN_ID,
        2,
        2,
        set.validators[1 % set.validators.len()].address,
        u64::MAX,
    );
    next.parent_hash = parent_hash;
    next.parent_certificate =
        Some(Certificate { height: 1, round: 0, block_hash: parent_hash, signatures });
    (runtime, state, next)
}

fn block_end(c: &mut Criterion) {
    let mut group = c.benchmark_group("staking_block_end");
    group.sample_size(20);
    for (validators, delegators) in [(4, 0), (100, 0), (100, 10_000)] {
        let (runtime, state, context) = setup(validators, delegators);
        let parent = Arc::new(state.snapshot(1).expect("kept"));
        // Check once that it is the valid block it should be.
        let check = runtime.begin_block(parent.clone(), context.clone()).finish();
        assert!(check.is_ok(), "{check:?}");
        let name = format!("{validators}_validators_{delegators}_delegators");
        group.bench_function(name, |b| {
            b.iter_batched(
                || runtime.begin_block(parent.clone(), context.clone()),
                |executor| executor.finish().expect("valid"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, block_end);
criterion_main!(benches);
