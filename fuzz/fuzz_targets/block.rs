//! libFuzzer's entry for [`altan_fuzz::block`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altan_fuzz::block(data));
