//! libFuzzer's entry for [`altan_fuzz::gossip`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altan_fuzz::gossip(data));
