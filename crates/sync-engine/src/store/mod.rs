//! Durable storage. [`Store`] is what the server and the engine need; each backend is a
//! sibling module implementing it (`sqlite` today).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use hookbridge_sync_engine::store::{InsertOutcome, NewDelivery, SqliteStore, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("hb.db"), Default::default()).await.unwrap();
//! let delivery = NewDelivery {
//!     endpoint: "github".into(),
//!     provider: "github".into(),
//!     delivery_id: "72d3162e".into(),
//!     event_type: "ping".into(),
//!     headers: vec![("x-github-event".into(), "ping".into())],
//!     body: bytes::Bytes::from_static(b"{}"),
//!     received_at: time::OffsetDateTime::now_utc(),
//! };
//! assert!(matches!(store.insert_delivery(delivery.clone()).await.unwrap(), InsertOutcome::Inserted { .. }));
//! assert_eq!(store.insert_delivery(delivery).await.unwrap(), InsertOutcome::Duplicate);
//! store.close().await;
//! # });
//! ```

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName, RawDelivery};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Serialize;
use time::OffsetDateTime;

pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// Headers never stored: they carry credentials, not information about the event.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// A delivery to put in the inbox.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// The endpoint it arrived on.
    pub endpoint: EndpointName,
    /// The provider kind of that endpoint.
    pub provider: String,
    /// The provider's delivery id; (endpoint, delivery id) is unique.
    pub delivery_id: DeliveryId,
    /// The event type as the provider named it.
    pub event_type: String,
    /// The request headers worth keeping (see [`NewDelivery::from_raw`]).
    pub headers: Vec<(String, String)>,
    /// The body exactly as received.
    pub body: Bytes,
    /// When it was received.
    pub received_at: OffsetDateTime,
}

impl NewDelivery {
    /// Builds the record of a verified, identified delivery. Credential headers
    /// (`Authorization`, `Cookie`) and headers that are not valid text are left out.
    pub fn from_raw(
        raw: &RawDelivery,
        provider: &str,
        delivery_id: DeliveryId,
        event_type: String,
    ) -> Self {
        let headers = raw
            .headers
            .iter()
            .filter(|(name, _)| !CREDENTIAL_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), v.to_owned()))
            })
            .collect();
        Self {
            endpoint: raw.endpoint.clone(),
            provider: provider.to_owned(),
            delivery_id,
            event_type,
            headers,
            body: raw.body.clone(),
            received_at: raw.received_at,
        }
    }
}

/// What inserting a delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The delivery is new and now durable, at this inbox sequence number.
    Inserted {
        /// The inbox sequence number.
        seq: i64,
    },
    /// A delivery with the same (endpoint, delivery id) was already stored; nothing changed.
    Duplicate,
}

/// A delivery as stored in the inbox.
#[derive(Clone, Debug, Serialize)]
pub struct StoredDelivery {
    /// The inbox sequence number, increasing with arrival.
    pub seq: i64,
    /// The endpoint it arrived on.
    pub endpoint: EndpointName,
    /// The provider kind.
    pub provider: String,
    /// The provider's delivery id.
    pub delivery_id: DeliveryId,
    /// The event type as the provider named it.
    pub event_type: String,
    /// The stored headers.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    #[serde(skip)]
    pub body: Bytes,
    /// When it was received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Processing status (`received` until the engine takes it).
    pub status: String,
}

impl StoredDelivery {
    /// The delivery as the provider sent it, to verify or parse again.
    pub fn to_raw(&self) -> RawDelivery {
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(n, v);
            }
        }
        RawDelivery {
            endpoint: self.endpoint.clone(),
            method: Method::POST,
            uri: http::Uri::from_static("/"),
            headers,
            body: self.body.clone(),
            received_at: self.received_at,
        }
    }
}

/// Which deliveries to list, newest first.
#[derive(Clone, Debug)]
pub struct DeliveryFilter {
    /// Only this endpoint.
    pub endpoint: Option<EndpointName>,
    /// Only deliveries with a sequence number below this one (for paging).
    pub before_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl Default for DeliveryFilter {
    fn default() -> Self {
        Self {
            endpoint: None,
            before_seq: None,
            limit: 50,
        }
    }
}

/// A storage failure. Messages never contain delivery bodies or secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error during {operation}: {source}")]
    Database {
        /// What the store was doing.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// A schema migration failed; the store was not opened.
    #[error("migration {version} failed: {source}")]
    Migration {
        /// The migration that failed.
        version: i64,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// The database was written by a newer hookbridge.
    #[error(
        "database schema version {found} is newer than this build knows ({known}); upgrade hookbridge"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this build has.
        known: i64,
    },
    /// The store's storage location could not be prepared.
    #[error("cannot prepare the store at {path}: {message}")]
    Location {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The store is shut down and accepts no more writes.
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database {
            operation,
            source: Arc::new(source),
        }
    }
}

/// Durable storage for hookbridge. Implementations must make an insert durable before they
/// return `Ok`: the server acknowledges a delivery only after that.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a delivery unless one with the same (endpoint, delivery id) exists.
    async fn insert_delivery(&self, delivery: NewDelivery) -> Result<InsertOutcome, StoreError>;

    /// The deliveries with this delivery id, on any endpoint or on the given one.
    async fn find_deliveries(
        &self,
        delivery_id: &DeliveryId,
        endpoint: Option<&EndpointName>,
    ) -> Result<Vec<StoredDelivery>, StoreError>;

    /// Deliveries matching the filter, newest first, without their bodies' meaning.
    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<StoredDelivery>, StoreError>;

    /// Whether the store can serve requests now (for `/readyz`).
    async fn check_health(&self) -> Result<(), StoreError>;

    /// Finishes pending writes and closes the store.
    async fn close(&self);
}
