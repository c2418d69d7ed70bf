//! The configuration loader: any text is refused with an error or loaded; it never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hookbridge_fuzz::config_target(data);
});
