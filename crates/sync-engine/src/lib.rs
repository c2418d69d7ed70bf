//! The hookbridge sync engine: the durable [`store`] (the [`Store`](store::Store) trait, the
//! embedded SQLite store and the PostgreSQL store) and the [`engine`] that turns stored
//! deliveries into applied rules, with leases, retries, dead letters, echo suppression and
//! pollers.
#![deny(missing_docs)]

pub mod engine;
pub mod heal;
pub mod integrations;
pub mod store;
