//! The ingest path piece by piece: verify, identify, typed parse, and persist (one
//! delivery at a time, and 64 concurrent ones sharing group commits), then all together as
//! the server does it (verify, identify, plan, store with the plan).
//!
//! `cargo bench -p hookbridge-server --bench ingest`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{EndpointName, Provider, RawDelivery, Secret};
use hookbridge_providers::github::{Github, GithubOptions};
use hookbridge_sync_engine::engine::Engine;
use hookbridge_sync_engine::store::{NewDelivery, SqliteOptions, SqliteStore, Store, Synchronous};
use http::{HeaderMap, HeaderValue};

const SECRET: &str = "bench-secret";

fn body() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../providers/samples/github/issues.opened.json"
    ))
    .unwrap()
}

fn delivery(body: &[u8], id: u64) -> RawDelivery {
    let mut headers = HeaderMap::new();
    let sig = format!(
        "sha256={}",
        hex::encode(hmac(Algorithm::Sha256, SECRET.as_bytes(), &[body]))
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-github-event", HeaderValue::from_static("issues"));
    headers.insert(
        "x-github-delivery",
        HeaderValue::from_str(&format!("bench-{id}")).unwrap(),
    );
    headers.insert("x-hub-signature-256", HeaderValue::from_str(&sig).unwrap());
    headers.insert(
        "user-agent",
        HeaderValue::from_static("GitHub-Hookshot/044aadd"),
    );
    RawDelivery::new("github", headers, body.to_vec())
}

fn record(provider: &Github, raw: &RawDelivery) -> NewDelivery {
    let id = provider.identify(raw).unwrap();
    NewDelivery::from_raw(raw, "github", id.delivery_id, id.event_type)
}

fn benches(c: &mut Criterion) {
    let body = body();
    let github =
        Arc::new(Github::new(vec![Secret::new(SECRET)], GithubOptions::default()).unwrap());
    let raw = delivery(&body, 0);

    let mut g = c.benchmark_group("github");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("verify", |b| b.iter(|| github.verify(&raw).unwrap()));
    g.bench_function("identify", |b| b.iter(|| github.identify(&raw).unwrap()));
    g.bench_function("parse_typed", |b| b.iter(|| github.parse(&raw).unwrap()));
    g.finish();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let counter = AtomicU64::new(1);
    for (name, synchronous) in [("full", Synchronous::Full), ("normal", Synchronous::Normal)] {
        let store: Arc<dyn Store> = Arc::new(
            rt.block_on(SqliteStore::open(
                dir.path().join(format!("{name}.db")),
                SqliteOptions {
                    synchronous,
                    ..SqliteOptions::default()
                },
            ))
            .unwrap(),
        );
        let mut g = c.benchmark_group(format!("persist_sync_{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("single", |b| {
            b.iter_batched(
                || {
                    record(
                        &github,
                        &delivery(&body, counter.fetch_add(1, Ordering::Relaxed)),
                    )
                },
                |d| rt.block_on(store.insert_delivery(d)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        g.throughput(Throughput::Elements(64));
        g.bench_function("concurrent_64", |b| {
            b.iter_batched(
                || {
                    (0..64)
                        .map(|_| {
                            record(
                                &github,
                                &delivery(&body, counter.fetch_add(1, Ordering::Relaxed)),
                            )
                        })
                        .collect::<Vec<_>>()
                },
                |batch| {
                    rt.block_on(async {
                        let tasks: Vec<_> = batch
                            .into_iter()
                            .map(|d| {
                                let store = store.clone();
                                tokio::spawn(async move { store.insert_delivery(d).await })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap().unwrap();
                        }
                    })
                },
                BatchSize::SmallInput,
            )
        });
        // What the server does per delivery: verify, identify, plan the dispatch (the typed
        // parse and the rules' match), and store the delivery with its plan.
        let engine = Engine::builder(store.clone())
            .endpoint(EndpointName::new("github"), github.clone())
            .build();
        g.throughput(Throughput::Elements(1));
        g.bench_function("verify_identify_plan_persist", |b| {
            b.iter_batched(
                || delivery(&body, counter.fetch_add(1, Ordering::Relaxed)),
                |raw| {
                    github.verify(&raw).unwrap();
                    let d = record(&github, &raw);
                    let plan = engine.plan(&raw, "github");
                    rt.block_on(store.insert_dispatched(d, plan)).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();
        rt.block_on(store.close());
    }
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
