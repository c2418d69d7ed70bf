//! The hookbridge sync engine. This release holds its durable foundation: the [`store`]
//! module with the [`Store`](store::Store) trait and the embedded SQLite store that keeps
//! the delivery inbox.
#![deny(missing_docs)]

pub mod store;
