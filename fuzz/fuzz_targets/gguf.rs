#![no_main]
//! `ditto_fuzz_targets::gguf` (fuzz/shared/src/lib.rs) under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ditto_fuzz_targets::gguf(data));

include!("../libfuzzer_main.rs");
