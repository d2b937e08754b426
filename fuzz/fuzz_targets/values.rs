//! `cargo +nightly fuzz run values`: see `preflight_core::fuzzing::values` for what must hold.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| preflight_core::fuzzing::values(data));
