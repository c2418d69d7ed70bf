//! `travis`: handshake, verify, identify and parse of arbitrary requests; what the provider
//! signs, it verifies.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hookbridge_fuzz::provider_target("travis", data);
});
