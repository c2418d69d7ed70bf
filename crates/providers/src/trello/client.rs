//! A typed client for Trello's REST API: webhooks (create, list for the token, get, update,
//! delete, and reconcile a desired set for `hooks sync`), cards (get, update, move, archive)
//! and card comments (add, list, edit, and create-or-edit by marker).
//!
//! Paths, verbs and parameters follow the REST reference
//! (<https://developer.atlassian.com/cloud/trello/rest/api-group-webhooks/>,
//! `api-group-tokens/`, `api-group-cards/`). Parameters other than the credentials are sent
//! as a JSON body rather than in the query string (Trello: "Query parameters may also be
//! replaced with a JSON request body instead"), which keeps callback URLs and comment texts
//! (up to 16 384 characters) out of URLs.
//!
//! Webhooks carry `consecutiveFailures` and `firstConsecutiveFailDate`: Trello counts failed
//! deliveries and deactivates a webhook that keeps failing, so [`TrelloClient::sync_webhooks`]
//! reports failing webhooks and reactivates inactive ones it owns.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookbridge_providers::api::ApiError> {
//! use hookbridge_providers::trello::auth::TrelloCredentials;
//! use hookbridge_providers::trello::client::{DesiredWebhook, TrelloClient, TrelloSettings};
//!
//! let trello = TrelloClient::from_settings(TrelloSettings::new(TrelloCredentials::new("key", "token")))?;
//! let desired = [DesiredWebhook::new("https://hooks.example.com/hooks/trello", "5abbe4b7ddc1b351ef961414")];
//! let report = trello
//!     .sync_webhooks(&desired, |hook| hook.callback_url.starts_with("https://hooks.example.com/"))
//!     .await?;
//! for failing in &report.failing {
//!     eprintln!("{} failed {} times in a row", failing.id, failing.consecutive_failures);
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use futures_util::{Stream, TryStreamExt};
use hookbridge_core::Secret;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::{SERVICE, TrelloCredentials};
use super::events::{Action, Label};
use crate::api::{ApiClient, ApiError, Call, RetryPolicy};
use crate::common::null_as_default;

/// Trello's REST API.
pub const DEFAULT_BASE_URL: &str = "https://api.trello.com/1";

/// Actions per page of `GET /1/cards/{id}/actions` ("Each page of results has 50 actions").
const ACTIONS_PAGE: usize = 50;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// A Trello webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// The webhook's id.
    pub id: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// The id of the model it watches (a board, list, card or member).
    #[serde(default)]
    pub id_model: String,
    /// Where Trello sends deliveries.
    #[serde(rename = "callbackURL", default)]
    pub callback_url: String,
    /// Whether Trello sends deliveries.
    #[serde(default)]
    pub active: bool,
    /// Deliveries that failed in a row (0 when the last one succeeded).
    #[serde(default, deserialize_with = "null_as_default")]
    pub consecutive_failures: u64,
    /// When the current run of failures started (null when there is none), as sent.
    #[serde(default)]
    pub first_consecutive_fail_date: Option<String>,
}

impl Webhook {
    /// When the current run of failures started, if there is one and it is a date.
    pub fn failing_since(&self) -> Option<OffsetDateTime> {
        self.first_consecutive_fail_date
            .as_deref()
            .and_then(|d| OffsetDateTime::parse(d, &Rfc3339).ok())
    }

    /// Whether the last deliveries failed.
    pub fn is_failing(&self) -> bool {
        self.consecutive_failures > 0
    }
}

/// A new webhook (`POST /1/webhooks/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewWebhook {
    /// Where Trello should send deliveries; it must answer Trello's `HEAD` check with 200.
    #[serde(rename = "callbackURL")]
    pub callback_url: String,
    /// The id of the model to watch.
    #[serde(rename = "idModel")]
    pub id_model: String,
    /// A description (0 to 16 384 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it should send deliveries (Trello's default: yes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// Changes to a webhook (`PUT /1/webhooks/{id}`); unset fields are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebhookUpdate {
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new callback URL.
    #[serde(rename = "callbackURL", skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// A new model to watch.
    #[serde(rename = "idModel", skip_serializing_if = "Option::is_none")]
    pub id_model: Option<String>,
    /// Activate or deactivate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// A webhook that should exist, for [`TrelloClient::sync_webhooks`]: identified by its
/// callback URL and model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredWebhook {
    /// The callback URL (exactly as the endpoint's `callback_url` option: Trello signs it).
    pub callback_url: String,
    /// The model to watch.
    pub id_model: String,
    /// The description to give it when creating it.
    pub description: Option<String>,
}

impl DesiredWebhook {
    /// A desired webhook on `id_model` calling `callback_url`.
    pub fn new(callback_url: impl Into<String>, id_model: impl Into<String>) -> Self {
        Self {
            callback_url: callback_url.into(),
            id_model: id_model.into(),
            description: None,
        }
    }

    fn matches(&self, hook: &Webhook) -> bool {
        hook.callback_url == self.callback_url && hook.id_model == self.id_model
    }
}

/// What [`TrelloClient::sync_webhooks`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookSyncReport {
    /// Desired webhooks that already existed, active.
    pub unchanged: Vec<Webhook>,
    /// Desired webhooks created.
    pub created: Vec<Webhook>,
    /// Desired webhooks that existed but were inactive, now reactivated.
    pub reactivated: Vec<Webhook>,
    /// Owned webhooks that are not desired, deleted.
    pub deleted: Vec<Webhook>,
    /// Webhooks of the token that are not owned: left alone.
    pub foreign: Vec<Webhook>,
    /// Desired webhooks whose last deliveries failed (`consecutiveFailures > 0`), as found.
    pub failing: Vec<Webhook>,
}

/// A card.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// The card's id.
    pub id: String,
    /// Its title.
    #[serde(default)]
    pub name: String,
    /// Its description (Markdown).
    #[serde(default)]
    pub desc: String,
    /// The list it is in.
    #[serde(default)]
    pub id_list: Option<String>,
    /// The board it is on.
    #[serde(default)]
    pub id_board: Option<String>,
    /// Whether it is archived.
    #[serde(default)]
    pub closed: bool,
    /// Its due date.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub due: Option<OffsetDateTime>,
    /// Whether the due date is marked complete.
    #[serde(default)]
    pub due_complete: bool,
    /// Its number on the board.
    #[serde(default)]
    pub id_short: Option<u64>,
    /// Its labels' ids.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id_labels: Vec<String>,
    /// Its labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    /// Its members' ids.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id_members: Vec<String>,
    /// When it last changed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub date_last_activity: Option<OffsetDateTime>,
    /// Its page.
    #[serde(default)]
    pub url: Option<String>,
    /// Its short URL.
    #[serde(default)]
    pub short_url: Option<String>,
}

/// A due date change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Set the due date.
    At(OffsetDateTime),
    /// Remove it (`null`).
    Clear,
}

/// Changes to a card (`PUT /1/cards/{id}`); unset fields are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardUpdate {
    /// A new title.
    pub name: Option<String>,
    /// A new description.
    pub desc: Option<String>,
    /// The list to move it to.
    pub id_list: Option<String>,
    /// Archive (`true`) or unarchive.
    pub closed: Option<bool>,
    /// A new due date, or none.
    pub due: Option<Due>,
    /// Mark the due date complete or not.
    pub due_complete: Option<bool>,
}

impl CardUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == CardUpdate::default()
    }

    fn body(&self) -> Result<Value, ApiError> {
        let mut body = serde_json::Map::new();
        if let Some(name) = &self.name {
            body.insert("name".into(), json!(name));
        }
        if let Some(desc) = &self.desc {
            body.insert("desc".into(), json!(desc));
        }
        if let Some(list) = &self.id_list {
            body.insert("idList".into(), json!(list));
        }
        if let Some(closed) = self.closed {
            body.insert("closed".into(), json!(closed));
        }
        match self.due {
            Some(Due::At(at)) => {
                let at = at.format(&Rfc3339).map_err(|e| ApiError::Config {
                    service: SERVICE,
                    message: format!("unformattable due date: {e}"),
                })?;
                body.insert("due".into(), json!(at));
            }
            Some(Due::Clear) => {
                body.insert("due".into(), Value::Null);
            }
            None => {}
        }
        if let Some(complete) = self.due_complete {
            body.insert("dueComplete".into(), json!(complete));
        }
        Ok(Value::Object(body))
    }
}

/// What [`TrelloClient::upsert_comment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentChange {
    /// A comment with the marker already had this text.
    Unchanged {
        /// The comment action's id.
        action_id: String,
    },
    /// The marked comment's text was replaced.
    Edited {
        /// The comment action's id.
        action_id: String,
    },
    /// No comment had the marker: one was added.
    Created {
        /// The new comment action's id.
        action_id: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// What [`TrelloClient::from_settings`] needs.
#[derive(Debug, Clone)]
pub struct TrelloSettings {
    /// The API base URL ([`DEFAULT_BASE_URL`]; a mock server in tests).
    pub base_url: String,
    /// The API key and token.
    pub credentials: TrelloCredentials,
    /// Retries of 429/5xx inside the client.
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl TrelloSettings {
    /// Settings for `credentials` with the defaults: the public API, the default retry
    /// policy, 30 s timeout.
    pub fn new(credentials: TrelloCredentials) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            credentials,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the base URL.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// Trello's REST API. Cheap to clone.
#[derive(Clone)]
pub struct TrelloClient {
    api: ApiClient,
    /// The token whose webhooks [`TrelloClient::list_webhooks`] lists (it is in that path).
    token: Option<Secret>,
}

impl fmt::Debug for TrelloClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrelloClient")
            .field("api", &self.api)
            .field("token", &self.token)
            .finish()
    }
}

/// Percent-encodes one path segment: nothing but unreserved characters stays as is, and
/// `.`/`..` cannot climb the path.
fn segment(value: &str) -> String {
    if value == "." || value == ".." {
        return value.replace('.', "%2E");
    }
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl TrelloClient {
    /// A client over `api` (with [`TrelloCredentials::auth`]). Without a token of its own it
    /// cannot [`list_webhooks`](Self::list_webhooks); see [`with_token`](Self::with_token) and
    /// [`list_token_webhooks`](Self::list_token_webhooks).
    pub fn new(api: ApiClient) -> Self {
        Self { api, token: None }
    }

    /// Remembers the token the API client authenticates with, for the token's webhooks.
    pub fn with_token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    /// A client from settings.
    pub fn from_settings(settings: TrelloSettings) -> Result<Self, ApiError> {
        let api = ApiClient::builder(SERVICE, &settings.base_url)?
            .auth(settings.credentials.auth()?)
            .retry(settings.retry)
            .timeout(settings.timeout)
            .header("accept", "application/json")?
            .build()?;
        Ok(Self::new(api).with_token(settings.credentials.token))
    }

    /// The underlying API client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    // --- webhooks -----------------------------------------------------------------------------

    /// `POST /1/webhooks/` with `callbackURL`, `idModel`, `description`, `active`. Trello
    /// checks the callback URL with a `HEAD` request first and refuses the webhook (400)
    /// unless it answers 200.
    pub async fn create_webhook(&self, webhook: &NewWebhook) -> Result<Webhook, ApiError> {
        let call = Call::new(Method::POST, "webhooks/").json(webhook)?;
        self.api.send_json(call).await
    }

    /// `GET /1/tokens/{token}/webhooks`: every webhook of this client's token.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, ApiError> {
        let token = self.token.as_ref().ok_or_else(|| ApiError::Config {
            service: SERVICE,
            message: "this client has no token to list webhooks for".into(),
        })?;
        self.list_token_webhooks(token).await
    }

    /// `GET /1/tokens/{token}/webhooks`: every webhook created with `token`.
    pub async fn list_token_webhooks(&self, token: &Secret) -> Result<Vec<Webhook>, ApiError> {
        let token = segment(&String::from_utf8_lossy(token.expose()));
        self.api
            .send_json(Call::new(Method::GET, format!("tokens/{token}/webhooks")))
            .await
    }

    /// `GET /1/webhooks/{id}` (it must belong to the token).
    pub async fn get_webhook(&self, id: &str) -> Result<Webhook, ApiError> {
        self.api
            .send_json(Call::new(Method::GET, format!("webhooks/{}", segment(id))))
            .await
    }

    /// `PUT /1/webhooks/{id}` with the fields to change.
    pub async fn update_webhook(
        &self,
        id: &str,
        update: &WebhookUpdate,
    ) -> Result<Webhook, ApiError> {
        let call = Call::new(Method::PUT, format!("webhooks/{}", segment(id))).json(update)?;
        self.api.send_json(call).await
    }

    /// `DELETE /1/webhooks/{id}`.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), ApiError> {
        self.api
            .send(Call::new(
                Method::DELETE,
                format!("webhooks/{}", segment(id)),
            ))
            .await
            .map(drop)
    }

    /// Makes the token's webhooks match `desired`: creates the missing ones, reactivates the
    /// inactive ones, and deletes the webhooks `owns` claims that are not desired. Webhooks
    /// `owns` does not claim (other integrations on the same token) are left alone. One
    /// listing, then one call per change; safe to repeat.
    pub async fn sync_webhooks(
        &self,
        desired: &[DesiredWebhook],
        owns: impl Fn(&Webhook) -> bool,
    ) -> Result<WebhookSyncReport, ApiError> {
        let remote = self.list_webhooks().await?;
        let mut report = WebhookSyncReport::default();
        for want in desired {
            match remote.iter().find(|hook| want.matches(hook)) {
                Some(hook) => {
                    if hook.is_failing() {
                        report.failing.push(hook.clone());
                    }
                    if hook.active {
                        report.unchanged.push(hook.clone());
                    } else {
                        let update = WebhookUpdate {
                            active: Some(true),
                            ..Default::default()
                        };
                        report
                            .reactivated
                            .push(self.update_webhook(&hook.id, &update).await?);
                    }
                }
                None => {
                    let new = NewWebhook {
                        callback_url: want.callback_url.clone(),
                        id_model: want.id_model.clone(),
                        description: want.description.clone(),
                        active: Some(true),
                    };
                    report.created.push(self.create_webhook(&new).await?);
                }
            }
        }
        for hook in remote {
            if desired.iter().any(|want| want.matches(&hook)) {
                continue;
            }
            if owns(&hook) {
                match self.delete_webhook(&hook.id).await {
                    // Deleted meanwhile: the desired end state.
                    Ok(()) | Err(ApiError::NotFound { .. }) => report.deleted.push(hook),
                    Err(error) => return Err(error),
                }
            } else {
                report.foreign.push(hook);
            }
        }
        Ok(report)
    }

    // --- cards --------------------------------------------------------------------------------

    /// `GET /1/cards/{id}`.
    pub async fn get_card(&self, id: &str) -> Result<Card, ApiError> {
        self.api
            .send_json(Call::new(Method::GET, format!("cards/{}", segment(id))))
            .await
    }

    /// `PUT /1/cards/{id}` with the fields to change (`name`, `desc`, `idList`, `closed`,
    /// `due`, `dueComplete`).
    pub async fn update_card(&self, id: &str, update: &CardUpdate) -> Result<Card, ApiError> {
        let call =
            Call::new(Method::PUT, format!("cards/{}", segment(id))).json(&update.body()?)?;
        self.api.send_json(call).await
    }

    /// Moves a card to a list (`PUT /1/cards/{id}` with `idList`).
    pub async fn move_card(&self, id: &str, list_id: &str) -> Result<Card, ApiError> {
        let update = CardUpdate {
            id_list: Some(list_id.to_owned()),
            ..Default::default()
        };
        self.update_card(id, &update).await
    }

    /// Archives (`true`) or unarchives a card (`PUT /1/cards/{id}` with `closed`).
    pub async fn set_card_closed(&self, id: &str, closed: bool) -> Result<Card, ApiError> {
        let update = CardUpdate {
            closed: Some(closed),
            ..Default::default()
        };
        self.update_card(id, &update).await
    }

    // --- comments -----------------------------------------------------------------------------

    /// `POST /1/cards/{id}/actions/comments` with `text`: the new `commentCard` action.
    pub async fn add_comment(&self, card_id: &str, text: &str) -> Result<Action, ApiError> {
        let call = Call::new(
            Method::POST,
            format!("cards/{}/actions/comments", segment(card_id)),
        )
        .json(&json!({ "text": text }))?;
        self.api.send_json(call).await
    }

    /// `PUT /1/cards/{id}/actions/{idAction}/comments` with `text`: replaces a comment's text.
    pub async fn update_comment(
        &self,
        card_id: &str,
        action_id: &str,
        text: &str,
    ) -> Result<(), ApiError> {
        let call = Call::new(
            Method::PUT,
            format!(
                "cards/{}/actions/{}/comments",
                segment(card_id),
                segment(action_id)
            ),
        )
        .json(&json!({ "text": text }))?;
        self.api.send(call).await.map(drop)
    }

    /// `GET /1/cards/{id}/actions?filter=commentCard&page=N`: the card's comments, newest
    /// first, as a stream (pages of 50 until a shorter one).
    pub fn comments(
        &self,
        card_id: &str,
    ) -> impl Stream<Item = Result<Action, ApiError>> + Send + 'static {
        let path = format!("cards/{}/actions", segment(card_id));
        let page_call = move |page: u64| {
            Call::new(Method::GET, path.clone())
                .query("filter", "commentCard")
                .query("page", page)
        };
        let first = page_call(0);
        let page_number = std::sync::atomic::AtomicU64::new(0);
        self.api.paginate(first, move |actions: Vec<Action>, _| {
            // A full page may have a successor; a short one is the last.
            let next = (actions.len() >= ACTIONS_PAGE).then(|| {
                let next = page_number.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                page_call(next)
            });
            Ok((actions, next))
        })
    }

    /// Makes the card carry exactly one comment with `marker` and this `text` (which should
    /// contain the marker; it is appended on a new line otherwise): edits the marked comment
    /// when its text differs, adds one when none has the marker. With `author`, only
    /// comments by that member id count (the bot's own). Safe to repeat.
    pub async fn upsert_comment(
        &self,
        card_id: &str,
        marker: &str,
        text: &str,
        author: Option<&str>,
    ) -> Result<CommentChange, ApiError> {
        let text = if text.contains(marker) {
            text.to_owned()
        } else {
            format!("{text}\n{marker}")
        };
        let mut comments = std::pin::pin!(self.comments(card_id));
        let mut existing = None;
        while let Some(action) = comments.try_next().await? {
            let by_author = author.is_none_or(|a| {
                action.id_member_creator.as_deref() == Some(a)
                    || action.member_creator.as_ref().is_some_and(|m| m.id == a)
            });
            let marked = action
                .data
                .text
                .as_deref()
                .is_some_and(|t| t.contains(marker));
            if by_author && marked {
                existing = Some(action);
                break;
            }
        }
        match existing {
            Some(action) if action.data.text.as_deref() == Some(text.as_str()) => {
                Ok(CommentChange::Unchanged {
                    action_id: action.id,
                })
            }
            Some(action) => {
                self.update_comment(card_id, &action.id, &text).await?;
                Ok(CommentChange::Edited {
                    action_id: action.id,
                })
            }
            None => {
                let action = self.add_comment(card_id, &text).await?;
                Ok(CommentChange::Created {
                    action_id: action.id,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_update_body_has_only_the_set_fields() {
        let update = CardUpdate {
            id_list: Some("5abbe4b7ddc1b351ef961414".into()),
            due: Some(Due::Clear),
            ..Default::default()
        };
        assert_eq!(
            update.body().unwrap(),
            json!({"idList": "5abbe4b7ddc1b351ef961414", "due": null})
        );
        let update = CardUpdate {
            due: Some(Due::At(time::macros::datetime!(2024-05-17 09:00 UTC))),
            due_complete: Some(false),
            ..Default::default()
        };
        assert_eq!(
            update.body().unwrap(),
            json!({"due": "2024-05-17T09:00:00Z", "dueComplete": false})
        );
        assert!(CardUpdate::default().is_empty());
    }

    #[test]
    fn webhook_failure_fields() {
        let hook: Webhook = serde_json::from_value(json!({
            "id": "5abbe4b7ddc1b351ef961414", "description": "Board Webhook",
            "idModel": "5abbe4b7ddc1b351ef961415", "callbackURL": "https://mywebhookurl.com/?type=board",
            "active": true, "consecutiveFailures": 3, "firstConsecutiveFailDate": "2024-05-17T09:21:03.512Z"
        }))
        .unwrap();
        assert!(hook.is_failing());
        assert_eq!(
            hook.failing_since(),
            Some(time::macros::datetime!(2024-05-17 09:21:03.512 UTC))
        );
    }

    #[test]
    fn tokens_in_paths_are_encoded() {
        assert_eq!(segment("ATTA1b2c/3"), "ATTA1b2c%2F3");
    }
}
