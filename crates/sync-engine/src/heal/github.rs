//! The GitHub healer: reads a webhook's delivery log since its cursor, and asks GitHub to
//! redeliver each delivery whose GUID the endpoint's inbox does not hold.
//!
//! The log lists attempts, newest first; a redelivery is a new attempt with the GUID of
//! the delivery it repeats. A run reads back to where the last one stopped, less
//! [`OVERLAP`] (GitHub logs an attempt when it ends, so attempts do not appear in exact
//! time order), groups the attempts by GUID, and, oldest delivery first:
//!
//! - a GUID stored in the inbox is healthy, whatever GitHub's log says about it (a timeout
//!   GitHub counted as a failure may still have been stored);
//! - a GUID never asked for is asked for (`redeliver:<guid>:1` recorded first, so no other
//!   run or instance asks too);
//! - a GUID asked for `n` times is asked again (`n + 1`, up to [`MAX_ASKS`]) only if GitHub
//!   refused the request, or if the log shows GitHub's redelivery after the ask and that it
//!   failed in a way worth repeating (the receiver unreachable, 408, 429 or 5xx); a
//!   redelivery the endpoint refused (4xx) or stored elsewhere is given up and reported.
//!
//! The first run, with no cursor, only notes where the log stands: deliveries logged
//! before hookbridge watched the hook may have been handled by whatever received them then
//! (`hookbridge heal --since` looks further back on purpose). Deliveries over a run's
//! maximum, and requests GitHub refused, keep the cursor at them, so the next run sees
//! them again.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use hookbridge_core::{DeliveryId, EndpointName};
use hookbridge_providers::api::ApiError;
use hookbridge_providers::github::client::{GithubClient, HookDelivery, HookRef, Repo};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    HealError, HealItem, HealOutcome, HealReport, HealSettings, Healer, MAX_ASKS, RunOptions,
    same_url, when,
};
use crate::store::Store;

/// How far before the last run's newest attempt a run starts reading.
pub const OVERLAP: Duration = Duration::from_secs(10 * 60);

/// The most log entries one run reads (100 pages of 100): GitHub's API budget is shared
/// with everything else the connection does.
const MAX_ENTRIES: usize = 10_000;

/// Which GitHub webhook's log to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GithubHook {
    /// A repository webhook: given by id, or found by its URL.
    Repo {
        /// The repository.
        repo: Repo,
        /// The hook's id; `None`: the hook delivering to the endpoint's URL.
        hook_id: Option<u64>,
    },
    /// An organization webhook: given by id, or found by its URL.
    Org {
        /// The organization's login.
        org: String,
        /// The hook's id; `None`: the hook delivering to the endpoint's URL.
        hook_id: Option<u64>,
    },
    /// The GitHub App's webhook (the connection must hold the app's credentials).
    App,
}

/// Heals one GitHub endpoint from one webhook's delivery log.
pub struct GithubHealer {
    name: String,
    endpoint: EndpointName,
    client: GithubClient,
    hook: GithubHook,
    url: Option<String>,
    interval: Duration,
    max_per_run: u32,
    /// The hook found by URL, until a 404 says it is gone.
    resolved: Mutex<Option<HookRef>>,
}

impl GithubHealer {
    /// A healer of `settings.endpoint` reading `hook`'s log with `client` (for an app's
    /// webhook, a client with the app's credentials: it reads as the app itself).
    pub fn new(
        settings: &HealSettings,
        client: GithubClient,
        hook: GithubHook,
    ) -> Result<Self, String> {
        let client = match hook {
            GithubHook::App => client.as_app().map_err(|e| e.to_string())?,
            _ => client,
        };
        let needs_url = matches!(
            hook,
            GithubHook::Repo { hook_id: None, .. } | GithubHook::Org { hook_id: None, .. }
        );
        if needs_url && settings.url.is_none() {
            return Err(
                "the hook is found by the URL it delivers to: set server.public_url, or hook_id"
                    .into(),
            );
        }
        Ok(Self {
            name: format!("heal:github:{}", settings.endpoint),
            endpoint: settings.endpoint.clone(),
            client,
            hook,
            url: settings.url.clone(),
            interval: settings.interval,
            max_per_run: settings.max_per_run,
            resolved: Mutex::new(None),
        })
    }

    fn api_error(&self, source: ApiError) -> HealError {
        HealError::Api {
            healer: self.name.clone(),
            source,
        }
    }

    fn store_error(&self, source: crate::store::StoreError) -> HealError {
        HealError::Store {
            healer: self.name.clone(),
            source,
        }
    }

    /// The hook to read: as configured, or the one delivering to the endpoint's URL.
    async fn resolve(&self) -> Result<HookRef, HealError> {
        if let Some(hook) = self.resolved.lock().ok().and_then(|h| h.clone()) {
            return Ok(hook);
        }
        let url = self.url.as_deref().unwrap_or_default();
        let delivers_here = |hook: &hookbridge_providers::github::client::Hook| {
            hook.config
                .as_ref()
                .and_then(|c| c.url.as_deref())
                .is_some_and(|u| same_url(u, url))
        };
        let not_found = |location: String| HealError::HookNotFound {
            healer: self.name.clone(),
            location,
            url: url.to_owned(),
        };
        let hook = match &self.hook {
            GithubHook::Repo {
                repo,
                hook_id: Some(hook_id),
            } => HookRef::Repo {
                repo: repo.clone(),
                hook_id: *hook_id,
            },
            GithubHook::Org {
                org,
                hook_id: Some(hook_id),
            } => HookRef::Org {
                org: org.clone(),
                hook_id: *hook_id,
            },
            GithubHook::App => HookRef::App,
            GithubHook::Repo {
                repo,
                hook_id: None,
            } => {
                let hooks: Vec<_> = self
                    .client
                    .list_hooks(repo)
                    .try_collect()
                    .await
                    .map_err(|e| self.api_error(e))?;
                let hook = hooks
                    .iter()
                    .find(|h| delivers_here(h))
                    .ok_or_else(|| not_found(format!("repository {repo}")))?;
                HookRef::Repo {
                    repo: repo.clone(),
                    hook_id: hook.id,
                }
            }
            GithubHook::Org { org, hook_id: None } => {
                let hooks: Vec<_> = self
                    .client
                    .list_org_hooks(org)
                    .try_collect()
                    .await
                    .map_err(|e| self.api_error(e))?;
                let hook = hooks
                    .iter()
                    .find(|h| delivers_here(h))
                    .ok_or_else(|| not_found(format!("organization {org}")))?;
                HookRef::Org {
                    org: org.clone(),
                    hook_id: hook.id,
                }
            }
        };
        if let Ok(mut resolved) = self.resolved.lock() {
            *resolved = Some(hook.clone());
        }
        Ok(hook)
    }

    fn forget_hook(&self) {
        if let Ok(mut resolved) = self.resolved.lock() {
            *resolved = None;
        }
    }

    /// The log from the newest attempt back to `from` (every entry when `None`) and after
    /// `floor`, at most `limit` entries; `true` when cut there.
    async fn read_log(
        &self,
        hook: &HookRef,
        from: Option<OffsetDateTime>,
        floor: Option<OffsetDateTime>,
        limit: usize,
    ) -> Result<(Vec<HookDelivery>, bool), ApiError> {
        let mut log = Vec::new();
        let mut stream = std::pin::pin!(self.client.list_hook_deliveries(hook));
        while let Some(attempt) = stream.try_next().await? {
            if from.is_some_and(|from| attempt.delivered_at < from)
                || floor.is_some_and(|floor| attempt.delivered_at <= floor)
            {
                return Ok((log, false));
            }
            if log.len() == limit {
                return Ok((log, true));
            }
            log.push(attempt);
        }
        Ok((log, false))
    }

    async fn asks(&self, store: &dyn Store, guid: &str) -> Result<Vec<Ask>, HealError> {
        let mut asks = Vec::new();
        for n in 1..=MAX_ASKS {
            let value = store
                .state(&self.name, &ask_key(guid, n))
                .await
                .map_err(|e| self.store_error(e))?;
            match value.and_then(|v| serde_json::from_value::<Ask>(v).ok()) {
                Some(ask) => asks.push(ask),
                None => break,
            }
        }
        Ok(asks)
    }

    async fn is_stored(&self, store: &dyn Store, guid: &str) -> Result<bool, HealError> {
        let found = store
            .find_deliveries(&DeliveryId::new(guid), Some(&self.endpoint))
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(!found.is_empty())
    }
}

/// The log position a run resumes from.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// The newest attempt seen (`None`: the log was empty).
    #[serde(with = "time::serde::rfc3339::option")]
    newest: Option<OffsetDateTime>,
    /// Where the first run found the log: attempts up to it are never healed (they predate
    /// hookbridge watching the hook), whatever the overlap.
    #[serde(default, with = "time::serde::rfc3339::option")]
    floor: Option<OffsetDateTime>,
}

/// A redelivery request, recorded before it is sent (`redeliver:<guid>:<n>`).
#[derive(Debug, Serialize, Deserialize)]
struct Ask {
    /// The log entry asked to be redelivered.
    attempt: u64,
    /// The newest attempt of the GUID when asking: a later redelivery attempt is GitHub's.
    known_up_to: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// What became of the request.
    state: AskState,
    /// GitHub's error, when it failed.
    #[serde(default)]
    error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AskState {
    /// Recorded; the request is being sent (or its sender died: outcome unknown).
    Asking,
    /// GitHub answered 202.
    Accepted,
    /// GitHub refused (4xx, or still rate limited): it did nothing.
    Refused,
    /// 5xx or no answer: GitHub may have queued it.
    Uncertain,
}

fn ask_key(guid: &str, n: u32) -> String {
    format!("redeliver:{guid}:{n}")
}

/// What to do about a missing GUID, given its asks and its attempts in the log.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Ask (for the `n`th time).
    Ask(u32),
    /// Asked `n` times; wait for GitHub's redelivery.
    Wait(u32),
    /// Not asked again.
    GiveUp(String),
}

/// A receiver status worth another redelivery: unreachable (0 or 502/504 from GitHub's
/// side), 408, 429, 5xx.
fn transient(status_code: u16) -> bool {
    matches!(status_code, 0 | 408 | 429 | 500..=599)
}

fn describe(attempt: &HookDelivery) -> String {
    match (attempt.status_code, attempt.status.as_str()) {
        (0, "") => "no answer".to_owned(),
        (code, "") => code.to_string(),
        (0, status) => status.to_owned(),
        (code, status) => format!("{code} {status}"),
    }
}

fn decide(asks: &[Ask], attempts: &[&HookDelivery]) -> Decision {
    let Some(last) = asks.last() else {
        return Decision::Ask(1);
    };
    let n = u32::try_from(asks.len()).unwrap_or(MAX_ASKS);
    let again = |why: String| {
        if n >= MAX_ASKS {
            Decision::GiveUp(format!("asked {n} times; {why}"))
        } else {
            Decision::Ask(n + 1)
        }
    };
    if last.state == AskState::Refused {
        return again(format!(
            "GitHub refused the last request: {}",
            last.error.as_deref().unwrap_or("no reason given")
        ));
    }
    let answer = attempts
        .iter()
        .filter(|a| a.redelivery && a.id > last.known_up_to)
        .max_by_key(|a| a.id);
    match answer {
        None => Decision::Wait(n),
        Some(a) if a.succeeded() => Decision::GiveUp(format!(
            "GitHub redelivered it ({}) but this endpoint has not stored it: does the hook deliver here?",
            describe(a)
        )),
        Some(a) if transient(a.status_code) => {
            again(format!("the redelivery failed too ({})", describe(a)))
        }
        Some(a) => Decision::GiveUp(format!(
            "this endpoint refused the redelivery ({}); once fixed, redeliver it from the hook's settings",
            describe(a)
        )),
    }
}

/// Whether GitHub surely did nothing with a refused request (so asking again is safe).
fn refused(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::NotFound { .. }
            | ApiError::Unauthorized { .. }
            | ApiError::Forbidden { .. }
            | ApiError::RateLimited { .. }
            | ApiError::Validation { .. }
            | ApiError::Config { .. }
    )
}

fn summary(attempts: &[&HookDelivery]) -> String {
    let first = attempts.iter().min_by_key(|a| a.id);
    let last = attempts.iter().max_by_key(|a| a.id);
    let (Some(first), Some(last)) = (first, last) else {
        return String::new();
    };
    let event = match &first.action {
        Some(action) => format!("{}.{action}", first.event),
        None => first.event.clone(),
    };
    let tries = if attempts.len() > 1 {
        format!(", {} attempts", attempts.len())
    } else {
        String::new()
    };
    format!(
        "{event} at {}: {}{tries}",
        when(first.delivered_at),
        describe(last)
    )
}

#[async_trait]
impl Healer for GithubHealer {
    fn name(&self) -> &str {
        &self.name
    }

    fn endpoint(&self) -> &EndpointName {
        &self.endpoint
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn run(&self, store: &dyn Store, options: &RunOptions) -> Result<HealReport, HealError> {
        let hook = self.resolve().await?;
        let mut report = HealReport::new(
            &self.name,
            &self.endpoint,
            hook.to_string(),
            options.dry_run,
        );
        let cursor: Option<Cursor> = store
            .cursor(&self.name)
            .await
            .map_err(|e| self.store_error(e))?
            .and_then(|c| serde_json::from_str(&c).ok());
        let first_run = cursor.is_none() && options.since.is_none();
        let from = match (options.since, &cursor) {
            (Some(since), _) => Some(since),
            (None, Some(cursor)) => cursor.newest.map(|t| t - OVERLAP),
            (None, None) => None,
        };
        // A backfill (`since`) reads below the floor on purpose.
        let floor = match options.since {
            Some(_) => None,
            None => cursor.as_ref().and_then(|c| c.floor),
        };
        let limit = if first_run { 1 } else { MAX_ENTRIES };
        let (log, cut) = match self.read_log(&hook, from, floor, limit).await {
            Ok(read) => read,
            Err(error) => {
                if error.is_not_found() {
                    // The hook may have been deleted and made again: look it up next time.
                    self.forget_hook();
                }
                return Err(self.api_error(error));
            }
        };
        report.scanned = log.len() as u64;
        let newest = log.iter().map(|a| a.delivered_at).max();
        if first_run {
            report.notes.push(match newest {
                Some(t) => format!(
                    "first run: watching the log from {} on (earlier deliveries are not healed; `hookbridge heal --since` looks further back)",
                    when(t)
                ),
                None => "first run: the log is empty; watching it from now on".to_owned(),
            });
            if !options.dry_run {
                self.save_cursor(store, newest, newest).await?;
            }
            return Ok(report);
        }
        if cut {
            let oldest = log.iter().map(|a| a.delivered_at).min();
            report.notes.push(format!(
                "the log holds more than {MAX_ENTRIES} attempts since the last run: attempts before {} were not checked",
                oldest.map(when).unwrap_or_default()
            ));
        }

        let mut by_guid: BTreeMap<&str, Vec<&HookDelivery>> = BTreeMap::new();
        for attempt in &log {
            by_guid.entry(&attempt.guid).or_default().push(attempt);
        }
        let mut order: Vec<(OffsetDateTime, &str)> = by_guid
            .iter()
            .filter_map(|(guid, attempts)| {
                attempts
                    .iter()
                    .map(|a| a.delivered_at)
                    .min()
                    .map(|t| (t, *guid))
            })
            .collect();
        order.sort();

        let max = options.max.unwrap_or(self.max_per_run);
        let mut asked = 0u32;
        // The earliest "newest attempt" of a GUID that must be seen again next run.
        let mut keep_from: Option<OffsetDateTime> = None;
        let mut keep = |attempts: &[&HookDelivery]| {
            if let Some(t) = attempts.iter().map(|a| a.delivered_at).max() {
                keep_from = Some(keep_from.map_or(t, |k: OffsetDateTime| k.min(t)));
            }
        };
        let mut stop_asking = false;
        for (_, guid) in order {
            let attempts = &by_guid[guid];
            if self.is_stored(store, guid).await? {
                continue;
            }
            let asks = self.asks(store, guid).await?;
            let mut item = HealItem {
                id: guid.to_owned(),
                summary: summary(attempts),
                outcome: HealOutcome::Deferred,
                new_gap: false,
                new_failure: false,
            };
            match decide(&asks, attempts) {
                Decision::Wait(n) => item.outcome = HealOutcome::AlreadyRequested(n),
                Decision::GiveUp(why) => {
                    // Counted as a failure once: the first run that gives up records it.
                    item.new_failure = !options.dry_run
                        && store
                            .put_state_if_absent(
                                &self.name,
                                &format!("gave-up:{guid}"),
                                &serde_json::json!({"at": when(OffsetDateTime::now_utc()), "why": why}),
                            )
                            .await
                            .map_err(|e| self.store_error(e))?;
                    item.outcome = HealOutcome::GaveUp(why);
                }
                Decision::Ask(_) if stop_asking || asked >= max => keep(attempts),
                Decision::Ask(n) => {
                    item.new_gap = n == 1;
                    asked += 1;
                    let newest_attempt = attempts.iter().map(|a| a.id).max().unwrap_or(0);
                    if options.dry_run {
                        item.outcome = HealOutcome::WouldRedeliver;
                        report.items.push(item);
                        continue;
                    }
                    let mut ask = Ask {
                        attempt: newest_attempt,
                        known_up_to: newest_attempt,
                        at: OffsetDateTime::now_utc(),
                        state: AskState::Asking,
                        error: None,
                    };
                    let key = ask_key(guid, n);
                    let claimed = store
                        .put_state_if_absent(&self.name, &key, &to_json(&ask))
                        .await
                        .map_err(|e| self.store_error(e))?;
                    if !claimed {
                        // Another run or instance asked first.
                        asked -= 1;
                        item.new_gap = false;
                        item.outcome = HealOutcome::AlreadyRequested(n);
                        report.items.push(item);
                        continue;
                    }
                    match self
                        .client
                        .redeliver_hook_delivery(&hook, newest_attempt)
                        .await
                    {
                        Ok(()) => {
                            ask.state = AskState::Accepted;
                            item.outcome = HealOutcome::Redelivered;
                            tracing::info!(healer = %self.name, guid, attempt = newest_attempt, n, "asked GitHub to redeliver");
                        }
                        Err(error) => {
                            ask.state = if refused(&error) {
                                // Nothing happened at GitHub: the next run may ask again.
                                keep(attempts);
                                AskState::Refused
                            } else {
                                AskState::Uncertain
                            };
                            ask.error = Some(error.to_string());
                            item.new_failure = true;
                            tracing::warn!(healer = %self.name, guid, %error, "redelivery request failed");
                            if matches!(
                                error,
                                ApiError::Unauthorized { .. }
                                    | ApiError::Forbidden { .. }
                                    | ApiError::RateLimited { .. }
                            ) {
                                // Every further request would fail alike.
                                stop_asking = true;
                                report.notes.push(format!(
                                    "stopped asking after: {error} (redelivery needs the hook's admin permission)"
                                ));
                            }
                            item.outcome = HealOutcome::Failed(error.to_string());
                        }
                    }
                    store
                        .put_state(&self.name, &key, &to_json(&ask))
                        .await
                        .map_err(|e| self.store_error(e))?;
                }
            }
            report.items.push(item);
        }

        if !options.dry_run {
            let floor = cursor.as_ref().and_then(|c| c.floor);
            let previous = cursor.and_then(|c| c.newest);
            let mut position = match (newest, previous) {
                (Some(n), Some(p)) if options.since.is_none() => Some(n.max(p)),
                (n, p) => n.or(p),
            };
            if let Some(keep) = keep_from {
                position = Some(position.map_or(keep, |p| p.min(keep)));
            }
            self.save_cursor(store, position, floor).await?;
        }
        Ok(report)
    }
}

impl GithubHealer {
    async fn save_cursor(
        &self,
        store: &dyn Store,
        newest: Option<OffsetDateTime>,
        floor: Option<OffsetDateTime>,
    ) -> Result<(), HealError> {
        let cursor = to_json(&Cursor { newest, floor }).to_string();
        store
            .commit_poll(&self.name, &cursor, Vec::new())
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(())
    }
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
