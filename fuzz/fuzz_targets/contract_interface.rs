//! libFuzzer's entry for [`altan_fuzz::contract_interface`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altan_fuzz::contract_interface(data));
