//! Generated modules (wasm-smith) against the VM: whatever the module does, deploying and calling
//! it ends in a receipt, never a panic, and two nodes get the same receipts and root.

use altan_primitives::{Action, ExecutionStatus, FailureReason, Hash, Receipt};
use arbitrary::Unstructured;
use proptest::prelude::*;

use crate::common::*;

fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        available_imports: Some(module("")),
        exports: Some(wat(
            r#"(module (memory (export "memory") 1) (func (export "call")) (func (export "deploy")))"#,
        )),
        // The exports template defines the one memory; wasm-smith must not add another.
        min_memories: 0,
        max_memories: 0,
        // Typed references need GC types, which contracts may not use (funcref tables remain).
        reference_types_enabled: false,
        max_memory32_bytes: 8 * 65_536,
        max_tables: 1,
        max_table_elements: 1_000,
        allow_start_export: false,
        memory64_enabled: false,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        tail_call_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        max_instructions: 400,
        ..wasm_smith::Config::default()
    }
}

fn run(code: &[u8], input: &[u8]) -> (Receipt, Option<Receipt>, Hash) {
    let mut chain = Chain::new();
    let alice = key(0);
    let deploy = chain.run(
        &alice,
        Action::Deploy { code: code.to_vec(), input: input.to_vec(), value: 0, salt: Hash::ZERO },
        40_000_000,
    );
    let call = deploy.contract_address.map(|contract| {
        chain.run(&alice, Action::Call { contract, input: input.to_vec(), value: 1 }, 2_000_000)
    });
    (deploy, call, chain.root())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn generated_modules_end_in_receipts_deterministically(
        seed in prop::collection::vec(any::<u8>(), 64..2048),
        input in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut u = Unstructured::new(&seed);
        let Ok(module) = wasm_smith::Module::new(config(), &mut u) else { return Ok(()) };
        let code = module.to_bytes();
        let first = run(&code, &input);
        let second = run(&code, &input);
        prop_assert_eq!(&first, &second);
        let (deploy, _, _) = first;
        prop_assert!(
            deploy.status == ExecutionStatus::Success
                || matches!(deploy.status, ExecutionStatus::Revert | ExecutionStatus::Failure(_)),
        );
        if deploy.status == ExecutionStatus::Failure(FailureReason::InvalidCode) {
            prop_assert!(deploy.contract_address.is_none());
        }
    }
}

#[test]
fn generated_modules_mostly_pass_validation() {
    // Guards the test above against silently testing nothing: most generated modules must reach
    // execution rather than being refused at deploy.
    let mut deployed = 0;
    for i in 0..40u32 {
        let seed: Vec<u8> = (0..1024u32)
            .map(|j| (j.wrapping_mul(2654435761).wrapping_add(i * 97) >> 7) as u8)
            .collect();
        let Ok(module) = wasm_smith::Module::new(config(), &mut Unstructured::new(&seed)) else {
            continue;
        };
        if altan_runtime::vm::validate(&module.to_bytes()).is_ok() {
            deployed += 1;
        }
    }
    assert!(deployed >= 20, "only {deployed} of 40 generated modules validated");
}
