//! `cargo +nightly fuzz run dns_name`: see `preflight_core::fuzzing::dns_name` for what must hold.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| preflight_core::fuzzing::dns_name(data));
