use altan_runtime::vm::{CodeError, validate};

use crate::common::*;

#[test]
fn a_valid_contract_reports_its_entry_points_and_reentrancy() {
    let info = validate(&token()).unwrap();
    assert!(info.has_constructor && !info.reentrant);
    let info = validate(&forwarder(true)).unwrap();
    assert!(!info.has_constructor && info.reentrant);
}

#[test]
fn validation_errors_are_specific() {
    let cases: Vec<(Vec<u8>, fn(&CodeError) -> bool)> = vec![
        (
            wat(
                r#"(module (import "env" "x" (func)) (memory (export "memory") 1) (func (export "call")))"#,
            ),
            |e| matches!(e, CodeError::UnknownImport { .. }),
        ),
        (wat(r#"(module (import "altan_v1" "output" (memory 1)) (func (export "call")))"#), |e| {
            matches!(e, CodeError::NonFunctionImport(_))
        }),
        (wat(r#"(module (func (export "call")))"#), |e| matches!(e, CodeError::BadMemory)),
        (wat(r#"(module (memory 1) (func (export "call")))"#), |e| {
            matches!(e, CodeError::BadMemory)
        }),
        (wat(r#"(module (memory (export "memory") 1))"#), |e| {
            matches!(e, CodeError::BadEntryPoint("call"))
        }),
        (
            wat(
                r#"(module (memory (export "memory") 1) (func (export "call")) (func (export "deploy") (result i32) i32.const 0))"#,
            ),
            |e| matches!(e, CodeError::BadEntryPoint("deploy")),
        ),
        (wat(r#"(module (memory (export "memory") 100) (func (export "call")))"#), |e| {
            matches!(e, CodeError::MemoryTooLarge { pages: 100, .. })
        }),
        (
            wat(
                r#"(module (memory (export "memory") 1) (func $s) (start $s) (func (export "call")))"#,
            ),
            |e| matches!(e, CodeError::StartFunction),
        ),
        (
            wat(
                r#"(module (memory (export "memory") 1) (table 5000 funcref) (func (export "call")))"#,
            ),
            |e| matches!(e, CodeError::Limit { what: "table elements", .. }),
        ),
        (b"not wasm".to_vec(), |e| matches!(e, CodeError::Invalid(_))),
        (
            wat(
                r#"(module (memory (export "memory") 1) (func (export "call") (drop (v128.const i64x2 0 0))))"#,
            ),
            |e| matches!(e, CodeError::Invalid(_)),
        ),
    ];
    for (code, expected) in cases {
        let error = validate(&code).unwrap_err();
        assert!(expected(&error), "unexpected {error:?}");
    }
}
