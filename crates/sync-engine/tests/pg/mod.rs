//! A PostgreSQL schema per test, at `HOOKBRIDGE_TEST_PG_URL`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use hookbridge_sync_engine::store::{PostgresOptions, PostgresStore};
use sqlx::Connection as _;

/// The test database's URL, or `None` (after saying so) when the tests should be skipped.
pub fn pg_url() -> Option<String> {
    match std::env::var("HOOKBRIDGE_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("HOOKBRIDGE_REQUIRE_PG").as_deref() == Ok("1") {
                panic!(
                    "HOOKBRIDGE_REQUIRE_PG=1 but HOOKBRIDGE_TEST_PG_URL is not set: \
                     point it at a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/test"
                );
            }
            eprintln!("skipping: HOOKBRIDGE_TEST_PG_URL is not set");
            None
        }
    }
}

/// A schema of its own for one test, dropped (best effort) when the test ends, even if it
/// panicked.
pub struct TestSchema {
    /// The database URL.
    pub url: String,
    /// The schema.
    pub name: String,
}

impl TestSchema {
    pub fn new() -> Option<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let url = pg_url()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "hb_test_{}_{}_{}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(Self { url, name })
    }

    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            max_connections: 5,
            schema: Some(self.name.clone()),
            ..PostgresOptions::default()
        }
    }

    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url, self.options())
            .await
            .unwrap()
    }

    pub async fn raw(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Its own thread and runtime: this may run inside the test's runtime, or unwinding.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test schema {}: {error}", self.name);
        }
    }
}
