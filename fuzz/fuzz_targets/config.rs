//! `cargo +nightly fuzz run config`: see `preflight_core::fuzzing::config` for what must hold.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| preflight_core::fuzzing::config(data));
