//! libFuzzer's entry for [`altan_fuzz::consensus_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altan_fuzz::consensus_message(data));
