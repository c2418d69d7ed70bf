//! The load harness.
