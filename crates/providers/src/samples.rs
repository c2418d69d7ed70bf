//! Realistic sample deliveries shipped with each provider, for `hookbridge send`, tests and
//! benchmarks. The JSON files live in `crates/providers/samples/<provider>/`.

/// One sample delivery body.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// The event's full name, e.g. `issues.opened`: what `hookbridge send --event` takes.
    pub name: &'static str,
    /// The event type as the provider's header (or envelope) names it, e.g. `issues`.
    pub event_type: &'static str,
    /// The JSON document.
    pub json: &'static str,
}

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
