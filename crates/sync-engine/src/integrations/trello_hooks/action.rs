//! The typed view of a Trello action that handlers and templates get, and the trait Rust
//! code implements to handle actions.

use std::sync::OnceLock;

use async_trait::async_trait;
use hookbridge_core::{Event, RuleError};
use hookbridge_providers::trello::events::{
    Action, ActionType, Board, Card, CardUpdate, FieldChange, List, TrelloEvent, TrelloPayload,
};

use crate::engine::RuleContext;

/// One Trello action, typed: the delivery's envelope, and for `updateCard` what changed
/// ([`CardUpdate`]: moved between lists, archived, unarchived, renamed, repositioned, other
/// fields with old and new values).
///
/// ```
/// use hookbridge_core::Provider;
/// use hookbridge_providers::trello::events::CardUpdate;
/// use hookbridge_sync_engine::integrations::trello_hooks::TrelloAction;
///
/// let body = br#"{"action":{"id":"a1","type":"updateCard","date":"2024-05-17T09:21:03Z",
///   "data":{"card":{"id":"c1","name":"Fix login"},"old":{"idList":"L1"},
///           "listBefore":{"id":"L1","name":"To Do"},"listAfter":{"id":"L2","name":"Doing"}},
///   "memberCreator":{"id":"m1","username":"alice","fullName":"Alice Martin"}}}"#;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("content-type", "application/json".parse().unwrap());
/// let raw = hookbridge_core::RawDelivery::new("trello", headers, &body[..]);
/// let event = hookbridge_providers::parser("trello").unwrap().parse(&raw).unwrap();
///
/// let action = TrelloAction::from_event(&event).unwrap();
/// assert_eq!(action.key(), "updateCard:moved");
/// let Some(CardUpdate::MovedBetweenLists { from, to }) = action.card_update() else { panic!() };
/// assert_eq!((from.name.as_deref(), to.name.as_deref()), (Some("To Do"), Some("Doing")));
/// assert_eq!(action.member_name().as_deref(), Some("Alice Martin"));
/// ```
pub struct TrelloAction<'a> {
    event: &'a Event,
    payload: &'a TrelloPayload,
    update: Option<CardUpdate>,
    raw: OnceLock<Option<serde_json::Value>>,
}

impl<'a> TrelloAction<'a> {
    /// The action of a Trello event; None for other providers' events and for Trello
    /// deliveries whose envelope could not be typed.
    pub fn from_event(event: &'a Event) -> Option<TrelloAction<'a>> {
        let payload = event.payload::<TrelloEvent>()?.payload()?;
        Some(TrelloAction {
            event,
            payload,
            update: payload.card_update(),
            raw: OnceLock::new(),
        })
    }

    /// The event (delivery id, subject, actor, time).
    pub fn event(&self) -> &Event {
        self.event
    }

    /// The whole typed delivery: the action and the watched model.
    pub fn payload(&self) -> &TrelloPayload {
        self.payload
    }

    /// The action.
    pub fn action(&self) -> &Action {
        &self.payload.action
    }

    /// The action's type (`createCard`, `updateCard`, ..., or `Other` for types this
    /// version does not list).
    pub fn kind(&self) -> &ActionType {
        &self.payload.action.kind
    }

    /// For `updateCard`: what changed.
    pub fn card_update(&self) -> Option<&CardUpdate> {
        self.update.as_ref()
    }

    /// The action's key for filters and templates: its type, and for `updateCard` the case
    /// (`updateCard:moved`, `updateCard:archived`, `updateCard:unarchived`,
    /// `updateCard:renamed`, `updateCard:repositioned`, `updateCard:fields`).
    pub fn key(&self) -> String {
        match &self.update {
            Some(update) => format!("{}:{}", self.kind(), update.name()),
            None => self.kind().as_str().to_owned(),
        }
    }

    /// Every field an update changed, with old and new values (the Trello "diff").
    pub fn field_changes(&self) -> Vec<FieldChange> {
        self.payload.field_changes()
    }

    /// The card involved, if any.
    pub fn card(&self) -> Option<&Card> {
        self.payload.action.data.card.as_ref()
    }

    /// The list involved (the one the card is in, or the list acted on), if any.
    pub fn list(&self) -> Option<&List> {
        let data = &self.payload.action.data;
        data.list.as_ref().or(data.list_after.as_ref())
    }

    /// The board the action happened on, if named.
    pub fn board(&self) -> Option<&Board> {
        self.payload.action.data.board.as_ref()
    }

    /// The id of the board the action happened on: `data.board`, else the watched model
    /// (a board webhook's model is the board).
    pub fn board_id(&self) -> Option<&str> {
        self.board()
            .map(|b| b.id.as_str())
            .or_else(|| self.payload.model.as_ref().map(|m| m.id.as_str()))
    }

    /// Who did it: full name, else username, else id.
    pub fn member_name(&self) -> Option<String> {
        let action = &self.payload.action;
        action
            .member_creator
            .as_ref()
            .map(|m| {
                m.full_name
                    .clone()
                    .or_else(|| m.username.clone())
                    .unwrap_or_else(|| m.id.clone())
            })
            .or_else(|| action.id_member_creator.clone())
    }

    /// The card's page, `https://trello.com/c/<shortLink>`, when the action names it.
    pub fn card_url(&self) -> Option<String> {
        self.card()?
            .short_link
            .as_ref()
            .map(|link| format!("https://trello.com/c/{link}"))
    }

    /// The delivery's JSON document as Trello sent it, for fields the typed payload does
    /// not model (`action.data.attachment`, ...).
    pub fn raw_json(&self) -> Option<&serde_json::Value> {
        self.raw
            .get_or_init(|| {
                self.event
                    .raw_json()
                    .and_then(|bytes| serde_json::from_slice(bytes).ok())
            })
            .as_ref()
    }
}

/// Rust code handling Trello actions, registered with
/// [`TrelloHooks::add_handler`](super::TrelloHooks::add_handler).
///
/// `handle` runs as part of the integration's rule, with its [`RuleContext`]: do side
/// effects through [`RuleContext::perform`] (recorded, skipped in dry runs), and return
/// [`RuleError::Transient`] for what a retry may fix. A handler that succeeded is not run
/// again for the same action when the job is retried for another step's failure; a
/// replayed delivery (`hookbridge deliveries replay`) runs the handlers that had not
/// succeeded, or that were added since.
///
/// ```
/// use async_trait::async_trait;
/// use hookbridge_core::RuleError;
/// use hookbridge_providers::trello::events::CardUpdate;
/// use hookbridge_sync_engine::engine::RuleContext;
/// use hookbridge_sync_engine::integrations::trello_hooks::{TrelloAction, TrelloHandler};
///
/// struct Done;
///
/// #[async_trait]
/// impl TrelloHandler for Done {
///     fn name(&self) -> &str {
///         "done"
///     }
///
///     fn wants(&self, action: &TrelloAction<'_>) -> bool {
///         matches!(action.card_update(), Some(CardUpdate::MovedBetweenLists { to, .. })
///             if to.name.as_deref() == Some("Done"))
///     }
///
///     async fn handle(&self, ctx: &RuleContext, action: &TrelloAction<'_>) -> Result<(), RuleError> {
///         let card = action.card().and_then(|c| c.name.clone()).unwrap_or_default();
///         ctx.perform("log", format!("card done: {card}"), async { Ok(()) }).await?;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait TrelloHandler: Send + Sync + 'static {
    /// A stable name, unique among the integration's handlers (progress is kept by it).
    fn name(&self) -> &str;

    /// Whether the handler wants this action (cheap); all of them by default.
    fn wants(&self, action: &TrelloAction<'_>) -> bool {
        let _ = action;
        true
    }

    /// Handles the action.
    async fn handle(&self, ctx: &RuleContext, action: &TrelloAction<'_>) -> Result<(), RuleError>;
}
