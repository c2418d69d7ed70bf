//! Form-encoded bodies (`payload=<json>`: GitHub, Slack, Travis CI) and query parameters:
//! decoding, identification and parsing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hookbridge_fuzz::form_target(data);
});
