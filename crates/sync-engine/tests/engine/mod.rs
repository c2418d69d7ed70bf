//! A tiny provider and rules for engine tests: deliveries are JSON
//! `{"id", "object", "field", "value", "actor"}` on endpoints named after their service.
#![allow(dead_code)]

pub mod ops;
pub mod scenarios;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use hookbridge_core::{
    Actor, DeliveryId, EndpointName, Event, IdentifyError, Identity, ParseError, Provider,
    ProviderKind, RawDelivery, RuleError, RuleOutcome, SubjectKey, SyncRule, Verified, VerifyError,
};
use hookbridge_sync_engine::engine::RuleContext;
use hookbridge_sync_engine::store::{InsertOutcome, NewDelivery, Store};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const KIND: ProviderKind = ProviderKind::new("svc");

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Change {
    pub id: String,
    pub object: String,
    pub field: String,
    pub value: String,
    pub actor: String,
    /// The service's own timestamp of the change (unix seconds), when it sends one.
    #[serde(default)]
    pub at: Option<i64>,
}

pub struct Svc;

impl Provider for Svc {
    fn kind(&self) -> ProviderKind {
        KIND
    }
    fn verify(&self, _: &RawDelivery) -> Result<Verified, VerifyError> {
        Ok(Verified {
            scheme: "none",
            secret_index: 0,
        })
    }
    fn identify(&self, d: &RawDelivery) -> Result<Identity, IdentifyError> {
        let c: Change =
            serde_json::from_slice(&d.body).map_err(|e| IdentifyError::Malformed(e.to_string()))?;
        Ok(Identity {
            delivery_id: DeliveryId::new(c.id),
            event_type: "change".into(),
        })
    }
    fn parse(&self, d: &RawDelivery) -> Result<Event, ParseError> {
        let c: Change =
            serde_json::from_slice(&d.body).map_err(|e| ParseError::Malformed(e.to_string()))?;
        let actor = Actor {
            id: None,
            name: c.actor.clone(),
            is_bot: false,
        };
        Ok(
            Event::new(KIND, "change", DeliveryId::new(c.id.clone()), c.clone())
                .with_subject(Some(SubjectKey::new(format!(
                    "{}:{}",
                    d.endpoint, c.object
                ))))
                .with_actor(Some(actor))
                .with_occurred_at(c.at.and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok())),
        )
    }
}

pub fn change_delivery(
    service: &str,
    id: &str,
    object: &str,
    field: &str,
    value: &str,
    actor: &str,
) -> NewDelivery {
    let change = Change {
        id: id.into(),
        object: object.into(),
        field: field.into(),
        value: value.into(),
        actor: actor.into(),
        at: None,
    };
    NewDelivery {
        endpoint: EndpointName::new(service),
        provider: KIND.as_str().into(),
        delivery_id: DeliveryId::new(id),
        event_type: "change".into(),
        headers: vec![],
        body: Bytes::from(serde_json::to_vec(&change).unwrap()),
        received_at: OffsetDateTime::now_utc(),
    }
}

pub async fn send(
    store: &dyn Store,
    service: &str,
    id: &str,
    object: &str,
    field: &str,
    value: &str,
    actor: &str,
) -> i64 {
    match store
        .insert_delivery(change_delivery(service, id, object, field, value, actor))
        .await
        .unwrap()
    {
        InsertOutcome::Inserted { seq } => seq,
        InsertOutcome::Duplicate => panic!("duplicate {id}"),
    }
}

/// An in-memory service: objects with fields, and a log of writes. Writing to it emits a
/// webhook (a delivery on its endpoint) like a real service would, with the writer as actor.
#[derive(Default)]
pub struct FakeService {
    pub name: String,
    pub writes: Mutex<Vec<(String, String, String)>>,
    pub emitted: Mutex<u32>,
}

/// Mirrors field changes from one service to another, with echo marks: the two-way sync
/// whose loop must stop after one hop.
pub struct Mirror {
    pub name: String,
    pub from: String,
    pub to: Arc<FakeService>,
    pub store: Arc<dyn Store>,
    /// The writer identity the target service reports in its webhooks (a human-looking
    /// integration account, so only echo marks can stop the loop).
    pub writer: String,
}

#[async_trait]
impl SyncRule<RuleContext> for Mirror {
    fn name(&self) -> &str {
        &self.name
    }
    fn matches(&self, event: &Event) -> bool {
        event
            .subject()
            .is_some_and(|s| s.as_str().starts_with(&format!("{}:", self.from)))
    }
    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        let change = event.payload::<Change>().expect("svc payload");
        let source = format!("{}:{}", self.from, change.object);
        if ctx.is_echo(&source, &change.field, &change.value).await? {
            return Ok(RuleOutcome::Skipped {
                reason: "echo of our own write".into(),
            });
        }
        let target = format!("{}:{}", self.to.name, change.object);
        ctx.mark_write(&target, &change.field, &change.value)
            .await?;
        let to = self.to.clone();
        let store = self.store.clone();
        let writer = self.writer.clone();
        let c = change.clone();
        ctx.perform(
            &self.to.name,
            format!("set {target} {} = {}", c.field, c.value),
            async move {
                to.writes.lock().unwrap().push((
                    c.object.clone(),
                    c.field.clone(),
                    c.value.clone(),
                ));
                let n = {
                    let mut emitted = to.emitted.lock().unwrap();
                    *emitted += 1;
                    *emitted
                };
                // The service's own webhook about the write.
                store
                    .insert_delivery(change_delivery(
                        &to.name,
                        &format!("{}-echo-{n}", to.name),
                        &c.object,
                        &c.field,
                        &c.value,
                        &writer,
                    ))
                    .await
                    .map_err(|e| RuleError::Transient {
                        message: e.to_string(),
                        retry_after: None,
                    })?;
                Ok(())
            },
        )
        .await?;
        Ok(RuleOutcome::Applied { actions: vec![] })
    }
}

/// Calls an HTTP endpoint once per event, sending the job's idempotency key, and maps the
/// answer to the engine's retry semantics.
pub struct Poster {
    pub name: String,
    pub url: String,
    pub client: reqwest::Client,
}

#[async_trait]
impl SyncRule<RuleContext> for Poster {
    fn name(&self) -> &str {
        &self.name
    }
    fn matches(&self, _: &Event) -> bool {
        true
    }
    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        let change = event.payload::<Change>().expect("svc payload").clone();
        let request = self
            .client
            .post(&self.url)
            .header("idempotency-key", ctx.idempotency_key())
            .json(&change);
        ctx.perform(
            "mock",
            format!("POST {} for {}", self.url, change.id),
            async move {
                let response = request.send().await.map_err(|e| RuleError::Transient {
                    message: e.to_string(),
                    retry_after: None,
                })?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .map(std::time::Duration::from_secs);
                if status.is_server_error() || status.as_u16() == 429 {
                    Err(RuleError::Transient {
                        message: format!("HTTP {status}"),
                        retry_after,
                    })
                } else {
                    Err(RuleError::Permanent {
                        message: format!("HTTP {status}"),
                    })
                }
            },
        )
        .await?;
        Ok(RuleOutcome::Applied { actions: vec![] })
    }
}

/// Records the order in which it sees values per object, sleeping a little to widen races.
pub struct Recorder {
    pub name: String,
    pub seen: Mutex<Vec<(String, String)>>,
    pub running: Mutex<std::collections::HashSet<String>>,
    pub overlaps: Mutex<u32>,
}

#[async_trait]
impl SyncRule<RuleContext> for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    fn matches(&self, _: &Event) -> bool {
        true
    }
    async fn apply(&self, _ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        let change = event.payload::<Change>().expect("svc payload").clone();
        if !self.running.lock().unwrap().insert(change.object.clone()) {
            *self.overlaps.lock().unwrap() += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        self.seen
            .lock()
            .unwrap()
            .push((change.object.clone(), change.value.clone()));
        self.running.lock().unwrap().remove(&change.object);
        Ok(RuleOutcome::Applied { actions: vec![] })
    }
}
