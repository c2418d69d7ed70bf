//! Typed Trello webhook payloads.
//!
//! Every Trello delivery is the same envelope: the `action` that changed the watched model,
//! and the `model` itself (`{"action": {...}, "model": {...}}`). The action's `type` says
//! what happened (`createCard`, `updateCard`, `commentCard`, ...), and its `data` carries
//! the objects involved (card, list, board, ...) plus, for updates, `old`: the previous
//! values of the fields that changed.
//!
//! [`TrelloEvent::from_json`] turns a delivery body into a typed event. Parsing is forward
//! compatible:
//!
//! - unknown fields are ignored (no type here uses `deny_unknown_fields`);
//! - unknown action types stay typed: the envelope with [`ActionType::Other`], which
//!   serializes back to the same string;
//! - an envelope whose shape does not fit (an action without `date`, a card without `id`,
//!   ...) becomes [`TrelloEvent::Untyped`], with the whole payload kept as JSON and the
//!   reason.
//!
//! ```
//! use hookbridge_providers::trello::events::{ActionType, TrelloEvent};
//!
//! let json = br#"{"action":{"id":"65f0c1a2b3c4d5e6f7a8b9c2","idMemberCreator":"5a1b2c3d4e5f60718293a4b5",
//!   "type":"updateCard","date":"2024-05-17T09:21:03.512Z",
//!   "data":{"card":{"id":"65e9a0b1c2d3e4f5a6b7c8d9","name":"Fix login","idList":"65e9a0b1c2d3e4f5a6b7c801"},
//!           "old":{"idList":"65e9a0b1c2d3e4f5a6b7c800"},
//!           "board":{"id":"65e9a0b1c2d3e4f5a6b7c000","name":"Engineering"}},
//!   "memberCreator":{"id":"5a1b2c3d4e5f60718293a4b5","username":"alice","fullName":"Alice"}},
//!   "model":{"id":"65e9a0b1c2d3e4f5a6b7c000","name":"Engineering"}}"#;
//! let event = TrelloEvent::from_json(json).unwrap();
//! assert_eq!(event.name(), "updateCard");
//! assert_eq!(event.changed_fields(), ["idList"]);
//! assert_eq!(event.subject().as_deref(), Some("trello:card/65e9a0b1c2d3e4f5a6b7c8d9"));
//! let TrelloEvent::Action(payload) = &event else { panic!("not typed") };
//! assert_eq!(payload.action.kind, ActionType::UpdateCard);
//! ```

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::common::expect_json_object;

string_enum! {
    /// The `type` of a Trello action: what happened. Trello has many more action types
    /// than these (`addAttachmentToCard`, `createCheckItem`, `updateLabel`, ...); they are
    /// kept as [`ActionType::Other`] in a typed envelope.
    ActionType {
        CreateCard => "createCard",
        UpdateCard => "updateCard",
        CommentCard => "commentCard",
        MoveCardToBoard => "moveCardToBoard",
        MoveCardFromBoard => "moveCardFromBoard",
        AddMemberToCard => "addMemberToCard",
        RemoveMemberFromCard => "removeMemberFromCard",
        DeleteCard => "deleteCard",
        CreateList => "createList",
        UpdateList => "updateList",
        UpdateBoard => "updateBoard",
        AddLabelToCard => "addLabelToCard",
        RemoveLabelFromCard => "removeLabelFromCard",
        UpdateCheckItemStateOnCard => "updateCheckItemStateOnCard",
    }
}

string_enum! {
    /// The `state` of a checklist item.
    CheckItemState {
        Complete => "complete",
        Incomplete => "incomplete",
    }
}

// ---------------------------------------------------------------------------------------------
// Objects carried in `action.data`
// ---------------------------------------------------------------------------------------------

/// A card as an action's `data.card` carries it: its id and short identifiers always, plus,
/// for `updateCard`, the new values of the fields that changed (their old values are in
/// [`ActionData::old`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// The card's id (24 hex digits).
    pub id: String,
    /// The card's title.
    #[serde(default)]
    pub name: Option<String>,
    /// The card's number within its board (`#12` in the UI).
    #[serde(default)]
    pub id_short: Option<u64>,
    /// The short link, the part of `https://trello.com/c/<shortLink>`.
    #[serde(default)]
    pub short_link: Option<String>,
    /// The list the card is in (present when the action moved it).
    #[serde(default)]
    pub id_list: Option<String>,
    /// The description, in Markdown (present when it changed).
    #[serde(default)]
    pub desc: Option<String>,
    /// Whether the card is archived (present when it changed).
    #[serde(default)]
    pub closed: Option<bool>,
    /// The due date, RFC 3339 (present when it changed; null when removed).
    #[serde(default)]
    pub due: Option<String>,
    /// Whether the due date is marked complete (present when it changed).
    #[serde(default)]
    pub due_complete: Option<bool>,
    /// The fields not typed above (`pos`, `idAttachmentCover`, `cover`, ...), as sent: for
    /// `updateCard`, the new values of such fields. See [`TrelloPayload::field_changes`].
    #[serde(flatten, default)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A list (a column of a board), as `data.list`, `data.listBefore` or `data.listAfter`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct List {
    /// The list's id.
    pub id: String,
    /// The list's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the list is archived (present when it changed).
    #[serde(default)]
    pub closed: Option<bool>,
    /// The fields not typed above (`pos`, ...), as sent: for `updateList`, the new values
    /// of such fields.
    #[serde(flatten, default)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A board, as `data.board`, `data.boardSource` or `data.boardTarget`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Board {
    /// The board's id.
    pub id: String,
    /// The board's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The short link, the part of `https://trello.com/b/<shortLink>`.
    #[serde(default)]
    pub short_link: Option<String>,
    /// Whether the board is closed (present when it changed).
    #[serde(default)]
    pub closed: Option<bool>,
    /// The fields not typed above (`desc`, `prefs`, ...), as sent: for `updateBoard`, the
    /// new values of such fields.
    #[serde(flatten, default)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A member as an action's `data.member` names it (`addMemberToCard`,
/// `removeMemberFromCard`, `moveCardFromBoard`): an id and a display name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRef {
    /// The member's id.
    pub id: String,
    /// The member's full name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A label, as `data.label` of `addLabelToCard` / `removeLabelFromCard`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    /// The label's id.
    pub id: String,
    /// The label's name (may be empty: Trello labels can be colour only).
    #[serde(default)]
    pub name: Option<String>,
    /// The label's colour (`green`, `red`, ...); null for a colourless label.
    #[serde(default)]
    pub color: Option<String>,
}

/// A checklist, as `data.checklist`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checklist {
    /// The checklist's id.
    pub id: String,
    /// The checklist's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A checklist item, as `data.checkItem`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckItem {
    /// The item's id.
    pub id: String,
    /// The item's text.
    #[serde(default)]
    pub name: Option<String>,
    /// `complete` or `incomplete`.
    #[serde(default)]
    pub state: Option<CheckItemState>,
}

/// The objects an action involves. Which fields are present depends on the action type;
/// every one is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionData {
    /// The card acted on.
    #[serde(default)]
    pub card: Option<Card>,
    /// The list the card is in, or the list acted on (`createList`, `updateList`).
    #[serde(default)]
    pub list: Option<List>,
    /// The board the action happened on (for `moveCardToBoard`, the destination; for
    /// `moveCardFromBoard`, the origin).
    #[serde(default)]
    pub board: Option<Board>,
    /// For a card moved between lists (`updateCard`): the list it left.
    #[serde(default)]
    pub list_before: Option<List>,
    /// For a card moved between lists (`updateCard`): the list it went to.
    #[serde(default)]
    pub list_after: Option<List>,
    /// For `moveCardToBoard`: the board the card came from.
    #[serde(default)]
    pub board_source: Option<Board>,
    /// For `moveCardFromBoard`: the board the card went to.
    #[serde(default)]
    pub board_target: Option<Board>,
    /// For `update*` actions: the previous values of the fields that changed, by field name
    /// (`{"idList": "..."}`, `{"name": "...", "desc": "..."}`); the new values are in the
    /// card, list or board object.
    #[serde(default)]
    pub old: Option<serde_json::Map<String, serde_json::Value>>,
    /// For `commentCard`: the comment, in Markdown.
    #[serde(default)]
    pub text: Option<String>,
    /// For member actions: the member added or removed.
    #[serde(default)]
    pub member: Option<MemberRef>,
    /// For member actions: the id of the member added or removed.
    #[serde(default)]
    pub id_member: Option<String>,
    /// For label actions: the label.
    #[serde(default)]
    pub label: Option<Label>,
    /// For checklist actions: the checklist.
    #[serde(default)]
    pub checklist: Option<Checklist>,
    /// For `updateCheckItemStateOnCard`: the item, with its new state.
    #[serde(default)]
    pub check_item: Option<CheckItem>,
}

/// A Trello member as `action.memberCreator` and `action.member` carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The member's id.
    pub id: String,
    /// The member's username (`@alice`, without the `@`).
    #[serde(default)]
    pub username: Option<String>,
    /// The member's full name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// The member's initials.
    #[serde(default)]
    pub initials: Option<String>,
}

/// The action that triggered the delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// The action's id: unique per action, the same in every delivery of it (the dedup key).
    pub id: String,
    /// The id of the member who performed the action.
    #[serde(default)]
    pub id_member_creator: Option<String>,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub date: OffsetDateTime,
    /// The objects involved.
    #[serde(default)]
    pub data: ActionData,
    /// The member who performed the action.
    #[serde(default)]
    pub member_creator: Option<Member>,
    /// For member actions (`addMemberToCard`, ...): the member added or removed, in full.
    #[serde(default)]
    pub member: Option<Member>,
    /// The Power-Up or app that performed the action on the member's behalf, if any.
    #[serde(default)]
    pub app_creator: Option<serde_json::Value>,
}

/// The model the webhook watches (a board, list, card or member), as it is after the action.
/// Only its identity is typed: its other fields depend on what kind of model it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// The model's id: the webhook's `idModel`.
    pub id: String,
    /// The model's name (boards, lists, cards).
    #[serde(default)]
    pub name: Option<String>,
    /// The model's page on trello.com (boards, cards).
    #[serde(default)]
    pub url: Option<String>,
}

/// The webhook that delivered the action, when Trello includes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookInfo {
    /// The webhook's id.
    pub id: String,
    /// The watched model's id.
    #[serde(default)]
    pub id_model: Option<String>,
    /// The webhook's description.
    #[serde(default)]
    pub description: Option<String>,
    /// The callback URL the webhook was created with.
    #[serde(rename = "callbackURL", default)]
    pub callback_url: Option<String>,
    /// Whether the webhook is active.
    #[serde(default)]
    pub active: Option<bool>,
}

/// The whole delivery: the action and the watched model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrelloPayload {
    /// The action that triggered the delivery.
    pub action: Action,
    /// The watched model.
    #[serde(default)]
    pub model: Option<Model>,
    /// The webhook, when the payload names it.
    #[serde(default)]
    pub webhook: Option<WebhookInfo>,
}

/// One field an update action changed: its name as Trello spells it, and its value before
/// and after (the Trello "diff" convention: `data.old` holds the old values, the card, list or
/// board object the new ones). A field the object no longer carries is `null` after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// The field (`desc`, `due`, `idList`, `pos`, ...).
    pub field: String,
    /// Its value before the action.
    pub old: serde_json::Value,
    /// Its value after the action.
    pub new: serde_json::Value,
}

/// What an `updateCard` action did, by what changed. Trello sends one `updateCard` per
/// user gesture; when its `old` names several fields, the first case below that applies
/// wins, and [`TrelloPayload::field_changes`] still lists every field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum CardUpdate {
    /// Moved from one list to another (`listBefore`/`listAfter`, or `idList` in `old`).
    MovedBetweenLists {
        /// The list it left (only the id when Trello did not name it).
        from: ListRef,
        /// The list it is in now.
        to: ListRef,
    },
    /// Archived (`closed` became true).
    Archived,
    /// Sent back to the board from the archive (`closed` became false).
    Unarchived,
    /// Renamed.
    Renamed {
        /// The previous title.
        from: String,
        /// The new title.
        to: String,
    },
    /// Moved up or down within its list (only `pos` changed).
    Repositioned {
        /// The previous position.
        from: serde_json::Value,
        /// The new position.
        to: serde_json::Value,
    },
    /// Any other fields (description, due date, cover, ...), with old and new values.
    Fields(Vec<FieldChange>),
}

impl CardUpdate {
    /// A short name of the case: `moved`, `archived`, `unarchived`, `renamed`,
    /// `repositioned` or `fields`.
    pub fn name(&self) -> &'static str {
        match self {
            CardUpdate::MovedBetweenLists { .. } => "moved",
            CardUpdate::Archived => "archived",
            CardUpdate::Unarchived => "unarchived",
            CardUpdate::Renamed { .. } => "renamed",
            CardUpdate::Repositioned { .. } => "repositioned",
            CardUpdate::Fields(_) => "fields",
        }
    }
}

/// A list named by an action: its id, and its name when the action carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListRef {
    /// The list's id.
    pub id: String,
    /// The list's name.
    pub name: Option<String>,
}

impl TrelloPayload {
    /// For update actions (`updateCard`, `updateList`, `updateBoard`, and any other action
    /// with a `data.old`): every changed field with its old and new value, sorted by field.
    /// The new value is read from the card (for `*Card` actions), list (`*List`) or board
    /// (`*Board`) of `data`. Empty when the action has no `old`.
    pub fn field_changes(&self) -> Vec<FieldChange> {
        let Some(old) = self.action.data.old.as_ref() else {
            return Vec::new();
        };
        let data = &self.action.data;
        let kind = self.action.kind.as_str();
        let object = if kind.ends_with("Card") {
            data.card.as_ref().map(serde_json::to_value)
        } else if kind.ends_with("List") {
            data.list.as_ref().map(serde_json::to_value)
        } else if kind.ends_with("Board") {
            data.board.as_ref().map(serde_json::to_value)
        } else {
            None
        };
        let object = object.and_then(Result::ok).unwrap_or_default();
        let mut changes: Vec<FieldChange> = old
            .iter()
            .map(|(field, was)| FieldChange {
                field: field.clone(),
                old: was.clone(),
                new: object.get(field).cloned().unwrap_or_default(),
            })
            .collect();
        changes.sort_by(|a, b| a.field.cmp(&b.field));
        changes
    }

    /// For `updateCard`: what changed, typed (see [`CardUpdate`]). None for other actions
    /// and for an `updateCard` that names no change.
    ///
    /// ```
    /// use hookbridge_providers::trello::events::{CardUpdate, TrelloEvent};
    /// let json = br#"{"action":{"id":"a1","type":"updateCard","date":"2024-05-17T09:21:03Z",
    ///   "data":{"card":{"id":"c1","name":"Fix login","closed":true},"old":{"closed":false}}}}"#;
    /// let event = TrelloEvent::from_json(json).unwrap();
    /// assert_eq!(event.payload().unwrap().card_update(), Some(CardUpdate::Archived));
    /// ```
    pub fn card_update(&self) -> Option<CardUpdate> {
        if self.action.kind != ActionType::UpdateCard {
            return None;
        }
        let data = &self.action.data;
        let old = data.old.as_ref()?;
        let card = data.card.as_ref();
        let list_ref = |list: &List| ListRef {
            id: list.id.clone(),
            name: list.name.clone(),
        };
        match (&data.list_before, &data.list_after) {
            (Some(before), Some(after)) => {
                return Some(CardUpdate::MovedBetweenLists {
                    from: list_ref(before),
                    to: list_ref(after),
                });
            }
            _ => {
                if let Some(from) = old.get("idList").and_then(serde_json::Value::as_str) {
                    let to = card.and_then(|c| c.id_list.clone()).unwrap_or_default();
                    return Some(CardUpdate::MovedBetweenLists {
                        from: ListRef {
                            id: from.to_owned(),
                            name: None,
                        },
                        to: ListRef { id: to, name: None },
                    });
                }
            }
        }
        // The new value when the card carries it; otherwise the opposite of the old one.
        if let Some(closed) = old.get("closed").and_then(|was| {
            card.and_then(|c| c.closed)
                .or_else(|| was.as_bool().map(|b| !b))
        }) {
            return Some(if closed {
                CardUpdate::Archived
            } else {
                CardUpdate::Unarchived
            });
        }
        if let Some(was) = old.get("name") {
            return Some(CardUpdate::Renamed {
                from: was.as_str().unwrap_or_default().to_owned(),
                to: card.and_then(|c| c.name.clone()).unwrap_or_default(),
            });
        }
        let changes = self.field_changes();
        match changes.as_slice() {
            [] => None,
            [only] if only.field == "pos" => Some(CardUpdate::Repositioned {
                from: only.old.clone(),
                to: only.new.clone(),
            }),
            _ => Some(CardUpdate::Fields(changes)),
        }
    }
}

/// A delivery whose envelope does not fit the typed shape, kept whole.
#[derive(Debug, Clone, Serialize)]
pub struct UntypedEvent {
    /// The payload's `action.type`, if it is a string.
    pub action_type: Option<String>,
    /// Why typing failed (the serde error text).
    pub reason: Option<String>,
    /// The whole payload (always a JSON object).
    pub payload: serde_json::Value,
}

/// A Trello webhook delivery, typed. Forward compatible: unknown action types and unknown
/// fields never fail parsing.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum TrelloEvent {
    /// The envelope, typed (the action type may be [`ActionType::Other`]).
    Action(Box<TrelloPayload>),
    /// An envelope that does not fit the typed shape: kept whole, with the raw JSON.
    Untyped(UntypedEvent),
}

impl TrelloEvent {
    /// Parses a delivery body. Err only when `json` is not well-formed JSON (syntax) or not a
    /// JSON object; a well-formed object that does not fit the typed envelope becomes
    /// `Untyped` with `reason` set.
    pub fn from_json(json: &[u8]) -> Result<TrelloEvent, serde_json::Error> {
        // A derived struct also accepts a JSON array (positionally): rule non-objects out first.
        expect_json_object(json)?;
        match serde_json::from_slice::<TrelloPayload>(json) {
            Ok(payload) => Ok(TrelloEvent::Action(Box::new(payload))),
            // A shape mismatch: keep the delivery whole if the document is well-formed (the
            // re-parse returns the syntax error if the mismatch hid one further on).
            Err(e) if e.is_data() => {
                let payload: serde_json::Value = serde_json::from_slice(json)?;
                let action_type = payload
                    .pointer("/action/type")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned);
                Ok(TrelloEvent::Untyped(UntypedEvent {
                    action_type,
                    reason: Some(e.to_string()),
                    payload,
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// The typed envelope; None for untyped deliveries.
    pub fn payload(&self) -> Option<&TrelloPayload> {
        match self {
            TrelloEvent::Action(payload) => Some(payload),
            TrelloEvent::Untyped(_) => None,
        }
    }

    /// The action type as Trello names it (`createCard`, `updateCard`, ...): the event's
    /// name. For an untyped delivery, its `action.type` if it has one, else `unknown`.
    pub fn name(&self) -> String {
        match self {
            TrelloEvent::Action(payload) => payload.action.kind.as_str().to_owned(),
            TrelloEvent::Untyped(untyped) => untyped
                .action_type
                .clone()
                .unwrap_or_else(|| "unknown".to_owned()),
        }
    }

    /// For `updateCard`: what changed, typed; see [`TrelloPayload::card_update`].
    pub fn card_update(&self) -> Option<CardUpdate> {
        self.payload().and_then(TrelloPayload::card_update)
    }

    /// The action's type; None for untyped deliveries.
    pub fn action_type(&self) -> Option<&ActionType> {
        self.payload().map(|p| &p.action.kind)
    }

    /// For update actions (`updateCard`, `updateList`, `updateBoard`): the names of the fields
    /// that changed, the keys of `data.old`, sorted. Empty otherwise.
    pub fn changed_fields(&self) -> Vec<&str> {
        self.payload()
            .and_then(|p| p.action.data.old.as_ref())
            .map(|old| old.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Who performed the action (`action.memberCreator`); None for untyped deliveries.
    pub fn member_creator(&self) -> Option<&Member> {
        self.payload()
            .and_then(|p| p.action.member_creator.as_ref())
    }

    /// The object the action is about, as a stable key for per-object ordering and links:
    /// `trello:card/<id>` when the action involves a card, else `trello:list/<id>` for a
    /// list, else `trello:board/<id>` for a board. None when it involves none of them.
    /// Untyped deliveries are keyed the same way from their raw `action.data`.
    pub fn subject(&self) -> Option<String> {
        let (card, list, board) = match self {
            TrelloEvent::Action(payload) => {
                let data = &payload.action.data;
                (
                    data.card.as_ref().map(|c| c.id.as_str()),
                    data.list.as_ref().map(|l| l.id.as_str()),
                    data.board.as_ref().map(|b| b.id.as_str()),
                )
            }
            TrelloEvent::Untyped(untyped) => {
                let id = |kind: &str| {
                    untyped
                        .payload
                        .pointer(&format!("/action/data/{kind}/id"))
                        .and_then(serde_json::Value::as_str)
                };
                (id("card"), id("list"), id("board"))
            }
        };
        card.map(|id| format!("trello:card/{id}"))
            .or_else(|| list.map(|id| format!("trello:list/{id}")))
            .or_else(|| board.map(|id| format!("trello:board/{id}")))
    }

    /// When the action happened (`action.date`), for recognising stale events; None for
    /// untyped deliveries.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        self.payload().map(|p| p.action.date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(data: serde_json::Value) -> TrelloPayload {
        serde_json::from_value(serde_json::json!({
            "action": {"id": "a1", "type": "updateCard", "date": "2024-05-17T09:21:03Z", "data": data}
        }))
        .unwrap()
    }

    #[test]
    fn moved_between_lists_from_the_sample() {
        let json = include_bytes!("../../samples/trello/updateCard.json");
        let event = TrelloEvent::from_json(json).unwrap();
        assert_eq!(
            event.card_update(),
            Some(CardUpdate::MovedBetweenLists {
                from: ListRef {
                    id: "65e9a0b1c2d3e4f5a6b7c100".into(),
                    name: Some("To Do".into())
                },
                to: ListRef {
                    id: "65e9a0b1c2d3e4f5a6b7c101".into(),
                    name: Some("Doing".into())
                },
            })
        );
        let changes = event.payload().unwrap().field_changes();
        assert_eq!(
            changes,
            [FieldChange {
                field: "idList".into(),
                old: "65e9a0b1c2d3e4f5a6b7c100".into(),
                new: "65e9a0b1c2d3e4f5a6b7c101".into(),
            }]
        );
    }

    #[test]
    fn moved_by_id_only() {
        let p = update(
            serde_json::json!({"card": {"id": "c", "idList": "L2"}, "old": {"idList": "L1"}}),
        );
        assert_eq!(
            p.card_update(),
            Some(CardUpdate::MovedBetweenLists {
                from: ListRef {
                    id: "L1".into(),
                    name: None
                },
                to: ListRef {
                    id: "L2".into(),
                    name: None
                },
            })
        );
    }

    #[test]
    fn archived_and_unarchived() {
        let p = update(
            serde_json::json!({"card": {"id": "c", "closed": true}, "old": {"closed": false}}),
        );
        assert_eq!(p.card_update(), Some(CardUpdate::Archived));
        let p = update(
            serde_json::json!({"card": {"id": "c", "closed": false}, "old": {"closed": true}}),
        );
        assert_eq!(p.card_update(), Some(CardUpdate::Unarchived));
        // Without the new value, the opposite of the old one.
        let p = update(serde_json::json!({"card": {"id": "c"}, "old": {"closed": true}}));
        assert_eq!(p.card_update(), Some(CardUpdate::Unarchived));
        assert_eq!(p.card_update().unwrap().name(), "unarchived");
    }

    #[test]
    fn renamed_repositioned_and_other_fields() {
        let p =
            update(serde_json::json!({"card": {"id": "c", "name": "New"}, "old": {"name": "Old"}}));
        assert_eq!(
            p.card_update(),
            Some(CardUpdate::Renamed {
                from: "Old".into(),
                to: "New".into()
            })
        );
        let p =
            update(serde_json::json!({"card": {"id": "c", "pos": 2048.5}, "old": {"pos": 16384}}));
        assert_eq!(
            p.card_update(),
            Some(CardUpdate::Repositioned {
                from: 16384.into(),
                to: 2048.5.into()
            })
        );
        let p = update(serde_json::json!({
            "card": {"id": "c", "desc": "now", "due": null, "idAttachmentCover": "x9"},
            "old": {"desc": "before", "due": "2024-06-01T10:00:00.000Z", "idAttachmentCover": null}
        }));
        let Some(CardUpdate::Fields(changes)) = p.card_update() else {
            panic!("{:?}", p.card_update())
        };
        let summary: Vec<_> = changes
            .iter()
            .map(|c| (c.field.as_str(), c.old.clone(), c.new.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("desc", "before".into(), "now".into()),
                (
                    "due",
                    "2024-06-01T10:00:00.000Z".into(),
                    serde_json::Value::Null
                ),
                ("idAttachmentCover", serde_json::Value::Null, "x9".into()),
            ]
        );
        // Another action type, or no `old`: no card update.
        assert_eq!(
            update(serde_json::json!({"card": {"id": "c"}})).card_update(),
            None
        );
        let mut created = update(serde_json::json!({"card": {"id": "c"}, "old": {"name": "x"}}));
        created.action.kind = ActionType::CreateCard;
        assert_eq!(created.card_update(), None);
    }

    #[test]
    fn list_and_board_updates_diff_their_own_object() {
        let p: TrelloPayload = serde_json::from_value(serde_json::json!({
            "action": {"id": "a", "type": "updateList", "date": "2024-05-17T09:21:03Z",
                "data": {"list": {"id": "L", "name": "Done", "pos": 7}, "old": {"name": "Finished", "pos": 3}}}
        }))
        .unwrap();
        let changes = p.field_changes();
        assert_eq!(
            changes[0],
            FieldChange {
                field: "name".into(),
                old: "Finished".into(),
                new: "Done".into()
            }
        );
        assert_eq!(
            changes[1],
            FieldChange {
                field: "pos".into(),
                old: 3.into(),
                new: 7.into()
            }
        );
        assert_eq!(p.card_update(), None);
    }
}
