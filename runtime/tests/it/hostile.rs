//! The hostile-contract corpus: each contract tries to break the host. Each must end in a
//! deterministic receipt with its gas charged, change nothing but the fee, and never panic.

use altan_primitives::{Action, ExecutionStatus, FailureReason, Hash, Receipt};

use crate::common::*;

/// Deploys `code`, calls it, and checks that the failed call changed only the fee and nonce.
fn call_fresh(
    code: Vec<u8>,
    input: Vec<u8>,
) -> (Receipt, Chain<altan_runtime::state::MemoryStore>) {
    let mut chain = Chain::new();
    let alice = key(0);
    let contract = chain.deploy(&alice, code);
    let before = chain.account(&alice.address());
    let receipt = chain.call(&alice, contract, input);
    if receipt.status != ExecutionStatus::Success {
        let after = chain.account(&alice.address());
        assert_eq!(after.nonce, before.nonce + 1);
        assert_eq!(after.balance, before.balance - u128::from(receipt.gas_used) * GAS_PRICE);
        assert!(receipt.events.is_empty() && receipt.contract_address.is_none());
        // Sender, proposer and the block record: nothing else.
        assert_eq!(chain.last_changes().len(), 3, "{:?}", chain.last_changes().keys());
    }
    (receipt, chain)
}

/// Runs `code` in two fresh chains and checks both give the same receipt and state root.
fn deterministic(code: Vec<u8>, input: Vec<u8>) -> Receipt {
    let (first, chain_a) = call_fresh(code.clone(), input.clone());
    let (second, chain_b) = call_fresh(code, input);
    assert_eq!(first, second);
    assert_eq!(chain_a.root(), chain_b.root());
    first
}

fn failure(reason: FailureReason) -> ExecutionStatus {
    ExecutionStatus::Failure(reason)
}

#[test]
fn infinite_loop_runs_out_of_gas_and_pays_all_of_it() {
    let receipt = deterministic(module(r#"(func (export "call") (loop (br 0)))"#), vec![]);
    assert_eq!(receipt.status, failure(FailureReason::OutOfGas));
    assert_eq!(receipt.gas_used, GAS_LIMIT);
}

#[test]
fn deep_recursion_overflows_the_stack_deterministically() {
    let receipt = deterministic(
        module(
            r#"(func $f (param i64) (call $f (i64.add (local.get 0) (i64.const 1)))) (func (export "call") (call $f (i64.const 0)))"#,
        ),
        vec![],
    );
    assert_eq!(receipt.status, failure(FailureReason::StackOverflow));
    assert!(receipt.gas_used < GAS_LIMIT);
}

#[test]
fn memory_growth_stops_at_the_limit() {
    // Grow one page at a time until refused; output the pages obtained.
    let receipt = deterministic(
        module(
            r#"(func (export "call") (local $n i32)
                 (block $done (loop $more
                   (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
                   (local.set $n (i32.add (local.get $n) (i32.const 1)))
                   (br $more)))
                 (i32.store (i32.const 0) (local.get $n))
                 (call $output (i32.const 0) (i32.const 4)))"#,
        ),
        vec![],
    );
    assert_eq!(receipt.status, ExecutionStatus::Success);
    let limit_pages = (altan_runtime::gas::MAX_MEMORY_BYTES / 65_536) as i32;
    assert_eq!(receipt.output, (limit_pages - 1).to_le_bytes());
}

#[test]
fn a_refused_allocation_that_aborts_is_a_trap() {
    // What a Rust contract does when its allocator cannot grow memory.
    let receipt = deterministic(
        module(
            r#"(func (export "call") (if (i32.eq (memory.grow (i32.const 1000)) (i32.const -1)) (then unreachable)))"#,
        ),
        vec![],
    );
    assert_eq!(receipt.status, failure(FailureReason::Trap));
}

#[test]
fn huge_initial_memory_is_refused_at_deploy() {
    let mut chain = Chain::new();
    let code = wat(r#"(module (memory (export "memory") 65536) (func (export "call")))"#);
    let receipt = chain.deploy_with(&key(0), code, vec![]);
    assert_eq!(receipt.status, failure(FailureReason::InvalidCode));
}

#[test]
fn floats_and_nans_have_the_same_bits_every_run() {
    let code = module(
        r#"(func (export "call")
             (f64.store (i32.const 0) (f64.div (f64.const 0) (f64.const 0)))
             (f32.store (i32.const 8) (f32.sqrt (f32.const -1)))
             ;; A NaN with a non-canonical payload and sign, through arithmetic.
             (f64.store (i32.const 16) (f64.add (f64.reinterpret_i64 (i64.const 0xfff0000000000001)) (f64.const 1)))
             (f32.store (i32.const 24) (f32.mul (f32.reinterpret_i32 (i32.const 0xff800001)) (f32.const 2)))
             (f64.store (i32.const 32) (f64.promote_f32 (f32.div (f32.const 1) (f32.const 3))))
             (call $output (i32.const 0) (i32.const 40)))"#,
    );
    let receipt = deterministic(code, vec![]);
    assert_eq!(receipt.status, ExecutionStatus::Success);
    let out = &receipt.output;
    let canonical64 = 0x7ff8_0000_0000_0000u64.to_le_bytes();
    let canonical32 = 0x7fc0_0000u32.to_le_bytes();
    assert_eq!(out[0..8], canonical64);
    assert_eq!(out[8..12], canonical32);
    assert_eq!(out[16..24], canonical64);
    assert_eq!(out[24..28], canonical32);
    assert_eq!(out[32..40], f64::from(1f32 / 3f32).to_le_bytes());
}

fn refused_at_deploy(code: Vec<u8>) {
    let mut chain = Chain::new();
    let alice = key(0);
    let before = chain.account(&alice.address());
    let receipt = chain.deploy_with(&alice, code, vec![]);
    assert_eq!(receipt.status, failure(FailureReason::InvalidCode));
    assert!(receipt.gas_used > 0);
    let after = chain.account(&alice.address());
    assert_eq!(after.balance, before.balance - u128::from(receipt.gas_used) * GAS_PRICE);
    assert_eq!(chain.last_changes().len(), 3);
}

#[test]
fn simd_threads_and_multi_memory_are_refused_at_deploy() {
    refused_at_deploy(module(
        r#"(func (export "call") (drop (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))"#,
    ));
    refused_at_deploy(wat(
        r#"(module (memory (export "memory") 1 1 shared) (func (export "call") (drop (i32.atomic.load (i32.const 0)))))"#,
    ));
    refused_at_deploy(wat(
        r#"(module (memory (export "memory") 1) (memory 1) (func (export "call")))"#,
    ));
}

#[test]
fn too_many_locals_or_functions_are_refused_at_deploy() {
    let locals = " i64".repeat(altan_runtime::gas::MAX_LOCALS as usize + 1);
    refused_at_deploy(module(&format!(r#"(func (export "call") (local{locals}))"#)));
    let functions = "(func)".repeat(altan_runtime::gas::MAX_FUNCTIONS as usize + 1);
    refused_at_deploy(module(&format!(r#"{functions} (func (export "call"))"#)));
}

#[test]
fn host_calls_with_out_of_bounds_pointers_fail_cleanly() {
    let bodies = [
        // Key range past the end of memory.
        r#"(call $storage_write (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 1))"#,
        // A negative length is a 4 GiB one.
        r#"(call $output (i32.const 0) (i32.const -1))"#,
        // Writing an address at the last bytes of memory.
        r#"(call $caller (i32.const 65530))"#,
        // Reading input into memory that cannot hold it.
        r#"(call $input_read (i32.const 65535))"#,
        // A storage value buffer out of bounds.
        r#"(call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1))
           (drop (call $storage_read (i32.const 0) (i32.const 1) (i32.const -8) (i32.const 8)))"#,
        // A key over the size limit.
        r#"(call $storage_write (i32.const 0) (i32.const 4096) (i32.const 0) (i32.const 1))"#,
        // A call with an address out of bounds.
        r#"(drop (call $call (i32.const 65535) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 1000)))"#,
    ];
    for body in bodies {
        let receipt =
            deterministic(module(&format!(r#"(func (export "call") {body})"#)), vec![0; 10]);
        assert_eq!(receipt.status, failure(FailureReason::InvalidHostCall), "{body}");
    }
}

#[test]
fn reentrancy_is_refused_unless_the_callee_opts_in() {
    let mut chain = Chain::new();
    let alice = key(0);
    let a = chain.deploy(&alice, forwarder(false));
    let b = chain.deploy(&alice, forwarder(false));
    // A calls itself: refused before anything runs, A sees status 2.
    let receipt =
        chain.call(&alice, a, forward_input(&a, 1_000_000, &forward_input(&a, 1_000, &[])));
    assert_eq!(receipt.status, ExecutionStatus::Success);
    assert_eq!(receipt.output, 2i32.to_le_bytes());
    // A -> B -> A: B's call back into A is refused; B returns that to A.
    let inner = forward_input(&a, 1_000, &[]);
    let receipt =
        chain.call(&alice, a, forward_input(&b, 1_000_000, &forward_input(&a, 500_000, &inner)));
    assert_eq!(receipt.output[..4], 0i32.to_le_bytes());
    assert_eq!(receipt.output[4..], 2i32.to_le_bytes());
}

#[test]
fn a_reentrant_contract_calling_itself_stops_at_the_depth_limit() {
    let mut chain = Chain::new();
    let alice = key(0);
    let me = chain.deploy(&alice, forwarder(true));
    let depth = altan_runtime::gas::MAX_CALL_DEPTH + 5;
    let mut input = Vec::new();
    for _ in 0..depth {
        input = forward_input(&me, u64::MAX, &input);
    }
    let receipt = chain.call(&alice, me, input.clone());
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    let statuses: Vec<i32> =
        receipt.output.chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    // Frames 1..=MAX_CALL_DEPTH each made a call; the last was refused.
    assert_eq!(statuses.len(), altan_runtime::gas::MAX_CALL_DEPTH);
    assert!(statuses[..statuses.len() - 1].iter().all(|&s| s == 0));
    assert_eq!(statuses.last(), Some(&2));
    // And the same again gives the same gas.
    let again = chain.call(&alice, me, input);
    assert_eq!(again.gas_used, receipt.gas_used);
}

#[test]
fn huge_output_and_events_fail_cleanly() {
    let bodies = [
        (
            r#"(drop (memory.grow (i32.const 2))) (call $output (i32.const 0) (i32.const 65537))"#,
            "output over the limit",
        ),
        (
            r#"(drop (memory.grow (i32.const 2))) (call $revert (i32.const 0) (i32.const 100000))"#,
            "revert data over the limit",
        ),
        (
            r#"(call $emit_event (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 20000))"#,
            "event data over the limit",
        ),
        (
            r#"(call $emit_event (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 1))"#,
            "too many topics",
        ),
        (
            r#"(loop $l (call $emit_event (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1)) (br $l))"#,
            "too many events",
        ),
    ];
    for (body, what) in bodies {
        let receipt = deterministic(module(&format!(r#"(func (export "call") {body})"#)), vec![]);
        assert_eq!(receipt.status, failure(FailureReason::InvalidHostCall), "{what}");
        assert!(receipt.output.is_empty(), "{what}");
    }
}

#[test]
fn a_contract_that_deploys_without_a_call_entry_is_refused() {
    refused_at_deploy(module(r#"(func (export "deploy"))"#));
    refused_at_deploy(module(r#"(func (export "call") (param i32))"#));
    refused_at_deploy(wat(
        r#"(module (import "env" "abort" (func)) (memory (export "memory") 1) (func (export "call")))"#,
    ));
    refused_at_deploy(wat(r#"(module (func (export "call")))"#));
    refused_at_deploy(module(r#"(func $s) (start $s) (func (export "call"))"#));
    refused_at_deploy(b"\0asm garbage".to_vec());
    let oversized = vec![0u8; altan_runtime::gas::MAX_CODE_SIZE + 1];
    let mut chain = Chain::new();
    let receipt = chain.run(
        &key(0),
        Action::Deploy { code: oversized, input: vec![], value: 0, salt: Hash::ZERO },
        90_000_000,
    );
    assert_eq!(receipt.status, failure(FailureReason::InvalidCode));
}

#[test]
fn imports_with_wrong_types_are_refused_at_deploy() {
    refused_at_deploy(wat(
        r#"(module (import "altan_v1" "output" (func (param i64))) (memory (export "memory") 1) (func (export "call")))"#,
    ));
}
