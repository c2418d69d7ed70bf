//! Rescans: GitHub sometimes does not deliver an event, so the reconciliation is replayed
//! over a repository's pull requests and issues, on demand ([`GithubJira::rescan`], the CLI's
//! `hookbridge rescan`) or on an interval ([`RescanSource`], which stores what it finds in
//! the inbox of the GitHub endpoint, as events with the action `rescan`).

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use hookbridge_core::{DeliveryId, EndpointName};
use hookbridge_providers::api::ApiError;
use hookbridge_providers::github::client::{PullFilter, PullState, Repo};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::GithubJira;
use super::reconcile::Depth;
use super::rule::RESCAN_ACTION;
use super::tracked::Tracked;
use crate::engine::{Clients, EngineConfig, Poll, PollError, RateLimiter, RuleContext, Source};
use crate::integrations::IntegrationError;
use crate::store::{NewDelivery, Store};

/// How far back each recurring rescan looks before its cursor, for objects updated while
/// the previous one was listing.
const OVERLAP: time::Duration = time::Duration::minutes(2);

/// The longest delivery id GitHub's parser accepts.
const MAX_DELIVERY_ID: usize = 128;

/// How [`GithubJira::rescan`] runs.
#[derive(Clone, Debug, Default)]
pub struct RescanOptions {
    /// Record what would be done without doing it.
    pub dry_run: bool,
    /// Only objects updated at or after this time (default: all).
    pub since: Option<OffsetDateTime>,
}

/// What a rescan found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RescanReport {
    /// The repository, `owner/name`.
    pub repo: String,
    /// Whether nothing was done (only recorded).
    pub dry_run: bool,
    /// Pull requests and issues looked at.
    pub scanned: usize,
    /// Objects something was done (or, in a dry run, would be done) for.
    pub changed: usize,
    /// Each action, `owner/name#12: <action>` (`would: ...` in a dry run).
    pub actions: Vec<String>,
    /// Each failure, `owner/name#12: <error>`; the rescan went on with the next object.
    pub errors: Vec<String>,
}

impl GithubJira {
    /// A rule context outside the engine, for operations such as the rescan.
    fn context(&self, store: Arc<dyn Store>, dry_run: bool) -> RuleContext {
        RuleContext {
            store,
            rule: self.name.clone(),
            job: None,
            dry_run,
            echo_ttl: EngineConfig::default().echo_ttl,
            clients: Clients::default(),
            limiter: Arc::new(RateLimiter::new(Vec::new())),
            actions: Mutex::new(Vec::new()),
        }
    }

    fn api_error(&self, source: ApiError) -> IntegrationError {
        IntegrationError::Api {
            integration: self.name.clone(),
            source,
        }
    }

    /// Replays the reconciliation over the pull requests (and issues, when tracked) of
    /// `repo` (`owner/name`), most recently updated first: creates the Jira issues missing
    /// for open objects, moves issues whose GitHub state changed unseen, and fixes status
    /// labels. Closed objects without an issue are left alone. With `dry_run`, the actions
    /// are listed and nothing is written (the store included).
    ///
    /// Fails only when the repository cannot be listed; a failure on one object is reported
    /// in [`RescanReport::errors`] and the rescan goes on.
    pub async fn rescan(
        &self,
        store: Arc<dyn Store>,
        repo: &str,
        options: &RescanOptions,
    ) -> Result<RescanReport, IntegrationError> {
        let parsed: Repo = repo.parse().map_err(|e| IntegrationError::Config {
            integration: self.name.clone(),
            message: format!("rescan: {e}"),
        })?;
        if !self.settings.covers(repo) {
            return Err(IntegrationError::Config {
                integration: self.name.clone(),
                message: format!("rescan: no mapping covers {repo}"),
            });
        }
        let mut report = RescanReport {
            repo: parsed.to_string(),
            dry_run: options.dry_run,
            ..RescanReport::default()
        };
        if self.settings.pull_requests {
            let filter = PullFilter::state(PullState::All).recently_updated();
            let mut pulls = pin!(self.github.list_pull_requests(&parsed, &filter));
            while let Some(pr) = pulls.try_next().await.map_err(|e| self.api_error(e))? {
                if let (Some(since), Some(updated)) = (options.since, pr.updated_at)
                    && updated < since
                {
                    break;
                }
                let obj = Tracked::from_api_pr(&parsed, &pr);
                self.rescan_one(&store, &obj, options.dry_run, &mut report)
                    .await;
            }
        }
        if self.settings.issues {
            let mut issues = pin!(
                self.github
                    .list_issues(&parsed, PullState::All, options.since)
            );
            while let Some(issue) = issues.try_next().await.map_err(|e| self.api_error(e))? {
                if issue.is_pull_request() {
                    continue;
                }
                let obj = Tracked::from_api_issue(&parsed, &issue);
                self.rescan_one(&store, &obj, options.dry_run, &mut report)
                    .await;
            }
        }
        tracing::info!(
            integration = %self.name,
            repo = %report.repo,
            dry_run = report.dry_run,
            scanned = report.scanned,
            changed = report.changed,
            errors = report.errors.len(),
            "rescan finished"
        );
        Ok(report)
    }

    async fn rescan_one(
        &self,
        store: &Arc<dyn Store>,
        obj: &Tracked,
        dry_run: bool,
        report: &mut RescanReport,
    ) {
        report.scanned += 1;
        let ctx = self.context(store.clone(), dry_run);
        let result = self.reconcile(&ctx, obj, Depth::RESCAN).await;
        let actions = ctx.take_actions();
        let name = format!("{}#{}", obj.repo, obj.number);
        if !actions.is_empty() {
            report.changed += 1;
        }
        report
            .actions
            .extend(actions.into_iter().map(|a| format!("{name}: {a}")));
        if let Err(error) = result {
            tracing::warn!(integration = %self.name, object = %name, %error, "rescan of one object failed");
            report.errors.push(format!("{name}: {error}"));
        }
    }

    /// A delivery of `event_type` carrying `payload`, as the recurring rescan stores it on
    /// the GitHub endpoint; the id is stable for one state of the object, so overlapping
    /// windows store it once.
    fn rescan_delivery(
        &self,
        event_type: &str,
        repo: &Repo,
        number: u64,
        updated: Option<OffsetDateTime>,
        payload: Value,
    ) -> Result<NewDelivery, serde_json::Error> {
        let stamp = updated.map_or(0, OffsetDateTime::unix_timestamp);
        let mut id = format!("rescan:{repo}#{number}@{stamp}");
        if id.len() > MAX_DELIVERY_ID {
            id = format!("rescan:{:016x}#{number}@{stamp}", fnv1a(repo.to_string()));
        }
        let body = serde_json::to_vec(&payload)?;
        Ok(NewDelivery {
            endpoint: EndpointName::new(self.settings.endpoint.clone()),
            provider: hookbridge_providers::github::KIND.as_str().to_owned(),
            delivery_id: DeliveryId::new(id.clone()),
            event_type: event_type.to_owned(),
            headers: vec![
                ("x-github-event".into(), event_type.to_owned()),
                ("x-github-delivery".into(), id),
                ("content-type".into(), "application/json".into()),
            ],
            body: Bytes::from(body),
            received_at: OffsetDateTime::now_utc(),
        })
    }
}

fn fnv1a(text: String) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The short `repository` object of the events a rescan stores.
fn repository_json(repo: &Repo) -> Value {
    json!({
        "id": 0,
        "name": repo.name(),
        "full_name": repo.to_string(),
        "owner": {"login": repo.owner(), "id": 0},
        "html_url": format!("https://github.com/{repo}"),
    })
}

/// `value` as an event object: webhook payloads always name a user, listings may not.
fn with_user(mut value: Value) -> Value {
    if value.get("user").is_none_or(Value::is_null) {
        value["user"] = json!({"login": "ghost", "id": 0});
    }
    value
}

/// The recurring rescan (`rescan_interval_secs`): lists the pull requests and issues of
/// `rescan_repos` updated since its cursor (the first time, the open ones) and stores each
/// as a `pull_request` or `issues` event with the action `rescan` on the GitHub endpoint,
/// where the rule reconciles it like a webhook, with retries and per-object order.
pub struct RescanSource {
    name: String,
    integration: Arc<GithubJira>,
    interval: Duration,
}

impl RescanSource {
    /// The poller of `integration`, named `<integration>:rescan`.
    pub fn new(integration: Arc<GithubJira>) -> Self {
        Self {
            name: format!("{}:rescan", integration.name),
            interval: Duration::from_secs(integration.settings.rescan_interval_secs),
            integration,
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> PollError {
        PollError {
            source_name: self.name.clone(),
            message: message.to_string(),
        }
    }
}

#[async_trait]
impl Source for RescanSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn poll(&self, cursor: Option<String>) -> Result<Poll, PollError> {
        let gj = &self.integration;
        let since = cursor
            .as_deref()
            .and_then(|c| OffsetDateTime::parse(c, &Rfc3339).ok());
        let window_start = since.map(|s| s - OVERLAP);
        // The first time, only open objects: the history before it is not replayed.
        let state = if since.is_some() {
            PullState::All
        } else {
            PullState::Open
        };
        let mut newest = since;
        let mut deliveries = Vec::new();
        for repo in &gj.settings.rescan_repos {
            if gj.settings.pull_requests {
                let filter = PullFilter::state(state.clone()).recently_updated();
                let mut pulls = pin!(gj.github.list_pull_requests(repo, &filter));
                while let Some(pr) = pulls.try_next().await.map_err(|e| self.error(e))? {
                    if let (Some(start), Some(updated)) = (window_start, pr.updated_at)
                        && updated < start
                    {
                        break;
                    }
                    newest = newest.max(pr.updated_at);
                    let payload = json!({
                        "action": RESCAN_ACTION,
                        "number": pr.number,
                        "pull_request": with_user(serde_json::to_value(&pr).map_err(|e| self.error(e))?),
                        "repository": repository_json(repo),
                    });
                    deliveries.push(
                        gj.rescan_delivery("pull_request", repo, pr.number, pr.updated_at, payload)
                            .map_err(|e| self.error(e))?,
                    );
                }
            }
            if gj.settings.issues {
                let mut issues = pin!(gj.github.list_issues(repo, state.clone(), window_start));
                while let Some(issue) = issues.try_next().await.map_err(|e| self.error(e))? {
                    if issue.is_pull_request() {
                        continue;
                    }
                    newest = newest.max(issue.updated_at);
                    let payload = json!({
                        "action": RESCAN_ACTION,
                        "issue": with_user(serde_json::to_value(&issue).map_err(|e| self.error(e))?),
                        "repository": repository_json(repo),
                    });
                    deliveries.push(
                        gj.rescan_delivery("issues", repo, issue.number, issue.updated_at, payload)
                            .map_err(|e| self.error(e))?,
                    );
                }
            }
        }
        let cursor = newest
            .unwrap_or_else(OffsetDateTime::now_utc)
            .format(&Rfc3339)
            .map_err(|e| self.error(e))?;
        tracing::debug!(source = %self.name, found = deliveries.len(), %cursor, "rescan poll");
        Ok(Poll { deliveries, cursor })
    }
}
