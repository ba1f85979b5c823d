#![no_main]
//! `ditto_fuzz_targets::datastore` (fuzz/shared/src/lib.rs) under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ditto_fuzz_targets::datastore(data));

include!("../libfuzzer_main.rs");
