//! Every fuzz target on seeded inputs: random bytes, and valid encodings with bytes flipped,
//! cut short or extended. A short run in the test suite; `./x fuzz` runs the targets under
//! libFuzzer for longer.
#![allow(clippy::arithmetic_side_effects)]

use altan_fuzz::TARGETS;
use altan_node::engine::wire::{ConsensusGossip, Envelope};
use altan_primitives::{
    Action, Address, Block, Header, Proposal, SecretKey, Transaction, Vote, VoteKind,
};
use parity_scale_codec::Encode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Valid inputs for the decoders, for the mutations to start from.
fn seeds() -> Vec<Vec<u8>> {
    let key = SecretKey::from_bytes(&[3; 32]).unwrap();
    let transaction = Transaction {
        chain_id: 1,
        nonce: 2,
        gas_limit: 30_000,
        gas_price: 1,
        action: Action::Transfer { to: Address([9; 20]), value: 5 },
    }
    .sign(&key);
    let header = Header {
        chain_id: 1,
        height: 1,
        parent_hash: Default::default(),
        timestamp_ms: 1,
        proposer: key.address(),
        state_root: Default::default(),
        transactions_root: Default::default(),
        receipts_root: Default::default(),
        parent_certificate_hash: Default::default(),
        evidence_root: Default::default(),
        gas_used: 0,
        gas_limit: 1,
    };
    let block = Block {
        header,
        transactions: vec![transaction.clone()],
        parent_certificate: None,
        evidence: Vec::new(),
    };
    let vote = Vote {
        chain_id: 1,
        kind: VoteKind::Prevote,
        height: 1,
        round: 0,
        block_hash: Some(block.hash()),
    }
    .sign(&key);
    let proposal =
        Proposal { chain_id: 1, height: 1, round: 0, block_hash: block.hash(), pol_round: None }
            .sign(&key);
    vec![
        transaction.encode(),
        block.encode(),
        Envelope { sending: 7, body: ConsensusGossip::Vote(vote) }.encode(),
        Envelope {
            sending: 8,
            body: ConsensusGossip::Proposal { proposal, block: Some(Box::new(block)) },
        }
        .encode(),
        Envelope { sending: 9, body: vec![transaction] }.encode(),
    ]
}

/// A seed changed by `edits` (position, byte) and cut to `keep` bytes.
fn mutate(seed: &[u8], edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for &(at, byte) in edits {
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] ^= byte;
        }
    }
    bytes.truncate(keep.max(1));
    bytes
}

#[test]
fn every_target_survives_random_bytes() {
    let mut runner = TestRunner::new(Config { cases: 300, ..Config::default() });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..4_096), |data| {
            for (_, target) in TARGETS {
                target(&data);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn every_target_survives_mutated_valid_inputs() {
    let seeds = seeds();
    for seed in &seeds {
        for (_, target) in TARGETS {
            target(seed);
        }
    }
    let mut runner = TestRunner::new(Config { cases: 300, ..Config::default() });
    let strategy =
        (0..seeds.len(), prop::collection::vec((any::<usize>(), 1..=255u8), 0..4), any::<usize>());
    runner
        .run(&strategy, |(index, edits, keep)| {
            let seed = &seeds[index];
            let data = mutate(seed, &edits, keep % (seed.len() + 8));
            for (_, target) in TARGETS {
                target(&data);
            }
            Ok(())
        })
        .unwrap();
}
