//! The behaviour every `Store` must have, run against each backend.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName};
use hookbridge_sync_engine::store::{DeliveryFilter, InsertOutcome, NewDelivery, Store};
use time::OffsetDateTime;

pub fn delivery(endpoint: &str, id: &str) -> NewDelivery {
    NewDelivery {
        endpoint: EndpointName::new(endpoint),
        provider: "github".into(),
        delivery_id: DeliveryId::new(id),
        event_type: "issues".into(),
        headers: vec![
            ("x-github-event".into(), "issues".into()),
            ("x-github-delivery".into(), id.into()),
        ],
        body: Bytes::from(format!("{{\"id\":\"{id}\",\"bytes\":\"\\u0000\u{e9}\"}}")),
        received_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap(),
    }
}

pub async fn insert_is_idempotent_per_endpoint(store: &dyn Store) {
    let first = store.insert_delivery(delivery("a", "1")).await.unwrap();
    let InsertOutcome::Inserted { seq } = first else {
        panic!("first insert: {first:?}")
    };
    assert_eq!(
        store.insert_delivery(delivery("a", "1")).await.unwrap(),
        InsertOutcome::Duplicate
    );
    // The same delivery id on another endpoint is another delivery.
    let other = store.insert_delivery(delivery("b", "1")).await.unwrap();
    assert!(matches!(other, InsertOutcome::Inserted { seq: s } if s > seq));

    let found = store
        .find_deliveries(&DeliveryId::new("1"), None)
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let only_a = store
        .find_deliveries(&DeliveryId::new("1"), Some(&EndpointName::new("a")))
        .await
        .unwrap();
    assert_eq!(only_a.len(), 1);
    let stored = &only_a[0];
    let original = delivery("a", "1");
    assert_eq!(stored.seq, seq);
    assert_eq!(stored.body, original.body, "body bytes kept exactly");
    assert_eq!(stored.headers, original.headers);
    assert_eq!(stored.received_at, original.received_at);
    assert_eq!(stored.event_type, "issues");
    assert_eq!(stored.status, "received");
    let raw = stored.to_raw();
    assert_eq!(raw.header("x-github-delivery"), Some("1"));
}

pub async fn concurrent_inserts_each_land_once(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..40 {
                // Every id is sent by two tasks: exactly one insert must win.
                let id = format!("c-{}-{i}", t / 2);
                outcomes.push((
                    id.clone(),
                    store.insert_delivery(delivery("c", &id)).await.unwrap(),
                ));
            }
            outcomes
        }));
    }
    let mut inserted = HashSet::new();
    let mut seqs = HashSet::new();
    let mut duplicates = 0;
    for task in tasks {
        for (id, outcome) in task.await.unwrap() {
            match outcome {
                InsertOutcome::Inserted { seq } => {
                    assert!(inserted.insert(id), "inserted twice");
                    assert!(seqs.insert(seq), "seq reused");
                }
                InsertOutcome::Duplicate => duplicates += 1,
            }
        }
    }
    assert_eq!(inserted.len(), 16 * 40);
    assert_eq!(duplicates, 16 * 40);
    let listed = store
        .list_deliveries(&DeliveryFilter {
            endpoint: Some(EndpointName::new("c")),
            limit: 10_000,
            before_seq: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 16 * 40);
}

pub async fn list_pages_newest_first(store: &dyn Store) {
    for i in 0..5 {
        store
            .insert_delivery(delivery("p", &format!("p{i}")))
            .await
            .unwrap();
    }
    store.insert_delivery(delivery("q", "q0")).await.unwrap();
    let page1 = store
        .list_deliveries(&DeliveryFilter {
            endpoint: Some(EndpointName::new("p")),
            limit: 3,
            before_seq: None,
        })
        .await
        .unwrap();
    let ids: Vec<_> = page1.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["p4", "p3", "p2"]);
    let page2 = store
        .list_deliveries(&DeliveryFilter {
            endpoint: Some(EndpointName::new("p")),
            limit: 3,
            before_seq: Some(page1.last().unwrap().seq),
        })
        .await
        .unwrap();
    let ids: Vec<_> = page2.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["p1", "p0"]);
    let all = store
        .list_deliveries(&DeliveryFilter::default())
        .await
        .unwrap();
    assert_eq!(all[0].delivery_id.as_str(), "q0");
}

pub async fn health_then_closed(store: &dyn Store) {
    store.check_health().await.unwrap();
    store.close().await;
    assert!(store.check_health().await.is_err());
    assert!(
        store
            .insert_delivery(delivery("z", "after-close"))
            .await
            .is_err()
    );
}
