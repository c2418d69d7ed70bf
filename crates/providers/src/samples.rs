//! Realistic sample deliveries shipped with each provider, for `hookbridge send`, tests and
//! benchmarks. The JSON files live in `crates/providers/samples/<provider>/`.

pub use hookbridge_core::Sample;

/// Declares samples from files under `samples/<dir>/`, one per event name.
macro_rules! samples {
    ($dir:literal: $($name:literal => $event_type:literal),* $(,)?) => {
        &[$($crate::samples::Sample {
            name: $name,
            event_type: $event_type,
            json: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/", $dir, "/", $name, ".json")),
        }),*]
    };
}
pub(crate) use samples;
