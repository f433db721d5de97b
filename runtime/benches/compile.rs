//! The worst compile time the validation limits allow: deploying a module of the largest size
//! (`gas::MAX_CODE_SIZE`) shaped to be slow to compile, on a VM with a cold cache, so that every
//! iteration validates and compiles it with cranelift. What a node pays for a deploy it has
//! never seen (in a block, or in a dry run on the free-work pool).
//!
//! `cargo bench -p altan-runtime --bench compile`
#![allow(missing_docs, clippy::arithmetic_side_effects, clippy::print_stdout, dead_code)]

#[path = "../tests/it/common.rs"]
mod common;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use altan_primitives::ExecutionStatus;
use altan_runtime::gas::{MAX_CODE_SIZE, MAX_FUNCTIONS, MAX_LOCALS};
use altan_runtime::state::MemoryStore;
use altan_runtime::vm::VmConfig;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

use common::*;

/// A module whose `call` body is `ops` pieces of WAT from `op`, with `locals` i64 locals;
/// `ops` grows until the module is just under the size limit.
fn largest(locals: u32, op: impl Fn(usize) -> String) -> Vec<u8> {
    let build = |ops: usize| {
        let mut body = String::new();
        for i in 0..ops {
            body.push_str(&op(i));
        }
        let locals = "(local i64)".repeat(locals as usize);
        module(&format!("(func (export \"call\") {locals} {body})"))
    };
    let (mut low, mut high) = (1, MAX_CODE_SIZE);
    while low < high {
        let mid = (low + high).div_ceil(2);
        if build(mid).len() <= MAX_CODE_SIZE { low = mid } else { high = mid - 1 }
    }
    build(low)
}

/// The most functions allowed, each a chain of calls to the one before, filling the size.
fn many_functions() -> Vec<u8> {
    let count = (MAX_FUNCTIONS as usize) - 64;
    let mut text = String::from("(func $f0 (param i64) (result i64) (local.get 0))");
    for i in 1..count {
        let _ = write!(
            text,
            "(func $f{i} (param i64) (result i64) (call $f{} (i64.add (local.get 0) (i64.const {i}))))",
            i - 1
        );
    }
    let _ = write!(text, "(func (export \"call\") (drop (call $f{} (i64.const 1))))", count - 1);
    module(&text)
}

fn shapes() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        // One long body of arithmetic on two locals.
        (
            "one_long_function",
            largest(2, |_| "(local.set 0 (i64.add (local.get 0) (local.get 1)))".to_string()),
        ),
        // As many locals as allowed, all live across the body: register allocation's worst.
        (
            "most_locals_all_live",
            largest(MAX_LOCALS - 1, |i| {
                let (a, b) =
                    (i % (MAX_LOCALS as usize - 1), (i * 7 + 3) % (MAX_LOCALS as usize - 1));
                format!("(local.set {a} (i64.mul (local.get {a}) (local.get {b})))")
            }),
        ),
        // Nested blocks with branches out of each.
        (
            "nested_branches",
            largest(1, |i| {
                format!("(block (br_if 0 (i64.eqz (local.get 0))) (local.set 0 (i64.const {i})))")
            }),
        ),
        ("most_functions", many_functions()),
    ]
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for (name, code) in shapes() {
        println!("{name}: {} bytes", code.len());
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let vm =
                        VmConfig { instances: VmConfig::instances_for(1), ..VmConfig::default() };
                    Chain::with_store(Arc::new(MemoryStore::new()), vm)
                },
                |mut chain| {
                    let receipt = chain.deploy_with(&key(0), code.clone(), Vec::new());
                    assert_eq!(receipt.status, ExecutionStatus::Success, "{name}: {receipt:?}");
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
