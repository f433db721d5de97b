//! The host ABI as WAT imports, for modules written by hand.

/// Every host function as a WAT import with its type, `$name` bound to each: what a module
/// written by hand (tests, fuzzers, tools) pastes into its `(module ...)`. A test checks it
/// against the linker.
pub const HOST_IMPORTS_WAT: &str = r#"
  (import "altan_v1" "input_len" (func $input_len (result i32)))
  (import "altan_v1" "input_read" (func $input_read (param i32)))
  (import "altan_v1" "output" (func $output (param i32 i32)))
  (import "altan_v1" "revert" (func $revert (param i32 i32)))
  (import "altan_v1" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))
  (import "altan_v1" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "altan_v1" "storage_remove" (func $storage_remove (param i32 i32)))
  (import "altan_v1" "caller" (func $caller (param i32)))
  (import "altan_v1" "self_address" (func $self_address (param i32)))
  (import "altan_v1" "value" (func $value (param i32)))
  (import "altan_v1" "balance" (func $balance (param i32 i32)))
  (import "altan_v1" "block_height" (func $block_height (result i64)))
  (import "altan_v1" "block_time" (func $block_time (result i64)))
  (import "altan_v1" "chain_id" (func $chain_id (result i64)))
  (import "altan_v1" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "altan_v1" "call" (func $call (param i32 i32 i32 i32 i64) (result i32)))
  (import "altan_v1" "return_data_len" (func $return_data_len (result i32)))
  (import "altan_v1" "return_data_read" (func $return_data_read (param i32)))
  (import "altan_v1" "transfer" (func $transfer (param i32 i32) (result i32)))
  (import "altan_v1" "blake3" (func $blake3 (param i32 i32 i32)))
  (import "altan_v1" "keccak256" (func $keccak256 (param i32 i32 i32)))
  (import "altan_v1" "recover" (func $recover (param i32 i32 i32) (result i32)))
  (import "altan_v1" "gas_left" (func $gas_left (result i64)))
"#;

#[cfg(test)]
mod tests {
    use altan_primitives::blake3;

    use super::*;
    use crate::vm::{HOST_FUNCTIONS, Vm, VmConfig};

    #[test]
    fn the_imports_wat_names_every_host_function_with_the_linkers_types() {
        let text = format!(
            "(module {HOST_IMPORTS_WAT} (memory (export \"memory\") 1) (func (export \"call\")))"
        );
        let code = wat::parse_str(&text).unwrap();
        for name in HOST_FUNCTIONS {
            assert!(HOST_IMPORTS_WAT.contains(&format!("\"{name}\"")), "{name} is missing");
        }
        let vm = Vm::new(VmConfig::default()).unwrap();
        let compiled = vm.cache.compile(&vm.engine, &vm.linker, &blake3(&code), &code);
        assert!(compiled.is_ok(), "the imports do not match the linker");
    }
}
