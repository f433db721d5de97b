//! libFuzzer's entry for [`altan_fuzz::sync_codec`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| altan_fuzz::sync_codec(data));
