#![no_main]
//! `ditto_fuzz_targets::payload` (fuzz/shared/src/lib.rs) under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ditto_fuzz_targets::payload(data));

include!("../libfuzzer_main.rs");
