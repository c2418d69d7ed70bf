//! Message templates per action: the defaults (one per action type the Django app had a
//! template for, and one per `updateCard` case), `{placeholder}` rendering, and the check
//! that a configured template only uses known placeholders.

use std::collections::BTreeMap;

use hookbridge_providers::trello::events::{CardUpdate, FieldChange};

use super::action::TrelloAction;

/// The template of an action nobody wrote one for, used only when `actions` has `*`.
pub(super) const GENERIC: &str = "{member}: {action} on {board}";

/// The default templates, by action key.
pub(super) const DEFAULTS: &[(&str, &str)] = &[
    (
        "addAttachmentToCard",
        "{member} attached {attachment} to {card}",
    ),
    (
        "addChecklistToCard",
        "{member} added checklist {checklist} to {card}",
    ),
    ("addLabelToCard", "{member} added label {label} to {card}"),
    ("addMemberToCard", "{member} added {added_member} to {card}"),
    ("commentCard", "{member} commented on {card}: {text}"),
    ("createCard", "{member} created {card} in {list}"),
    (
        "createCheckItem",
        "{member} added {check_item} to {checklist} on {card}",
    ),
    ("createList", "{member} created list {list} on {board}"),
    (
        "deleteAttachmentFromCard",
        "{member} removed attachment {attachment} from {card}",
    ),
    ("deleteCard", "{member} deleted a card from {list}"),
    (
        "deleteCheckItem",
        "{member} deleted {check_item} from {card}",
    ),
    ("deleteComment", "{member} deleted a comment on {card}"),
    (
        "moveCardFromBoard",
        "{member} moved {card} from {board} to another board",
    ),
    ("moveCardToBoard", "{member} moved {card} to {board}"),
    (
        "removeLabelFromCard",
        "{member} removed label {label} from {card}",
    ),
    (
        "removeMemberFromCard",
        "{member} removed {added_member} from {card}",
    ),
    ("updateCard", "{member} changed {changes} on {card}"),
    (
        "updateCard:moved",
        "{member} moved {card} from {list_before} to {list_after}",
    ),
    ("updateCard:archived", "{member} archived {card}"),
    (
        "updateCard:unarchived",
        "{member} sent {card} back to the board",
    ),
    ("updateCard:renamed", "{member} renamed {old} to {new}"),
    (
        "updateCard:repositioned",
        "{member} moved {card} within {list}",
    ),
    ("updateCard:fields", "{member} changed {changes} on {card}"),
    ("updateCheckItem", "{member} updated {check_item} on {card}"),
    (
        "updateCheckItemStateOnCard",
        "{member} marked {check_item} {state} on {card}",
    ),
    (
        "updateComment",
        "{member} edited a comment on {card}: {text}",
    ),
    ("updateLabel", "{member} updated label {label} on {board}"),
    ("updateList", "{member} changed {changes} of list {list}"),
];

/// Every placeholder a template may use.
pub(super) const PLACEHOLDERS: &[&str] = &[
    "action",
    "added_member",
    "attachment",
    "board",
    "card",
    "card_url",
    "changes",
    "check_item",
    "checklist",
    "field",
    "label",
    "list",
    "list_after",
    "list_before",
    "member",
    "new",
    "old",
    "state",
    "text",
];

/// The longest value a placeholder expands to (a long comment is cut).
const MAX_VALUE_CHARS: usize = 500;

/// A template, split into literal text and placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Template(crate::integrations::template::Template<&'static str>);

impl Template {
    /// Parses `text`: `{name}` is a placeholder, `{{` and `}}` literal braces. Unknown
    /// placeholders and unbalanced braces are refused, with what is wrong.
    pub(super) fn parse(text: &str) -> Result<Template, String> {
        crate::integrations::template::Template::parse(text, |name| {
            PLACEHOLDERS
                .iter()
                .copied()
                .find(|p| *p == name)
                .ok_or_else(|| crate::integrations::template::unknown(name, PLACEHOLDERS))
        })
        .map(Template)
    }

    /// The text for `action`; a placeholder without a value renders as `-`.
    pub(super) fn render(&self, action: &TrelloAction<'_>) -> String {
        self.0.render(|name| {
            let value = value(action, name).filter(|v| !v.trim().is_empty());
            cut(value.as_deref().unwrap_or("-"))
        })
    }
}

/// The default templates, parsed (they are known to parse).
pub(super) fn defaults() -> BTreeMap<String, Template> {
    DEFAULTS
        .iter()
        .filter_map(|(key, text)| Template::parse(text).ok().map(|t| ((*key).to_owned(), t)))
        .collect()
}

fn cut(value: &str) -> String {
    if value.chars().count() <= MAX_VALUE_CHARS {
        return value.to_owned();
    }
    let mut cut: String = value.chars().take(MAX_VALUE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A JSON value as text: strings bare, `null` as `none`.
fn show(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => format!("\"{s}\""),
        serde_json::Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

fn change_text(change: &FieldChange) -> String {
    format!(
        "{} from {} to {}",
        change.field,
        show(&change.old),
        show(&change.new)
    )
}

fn value(action: &TrelloAction<'_>, name: &str) -> Option<String> {
    let data = &action.payload().action.data;
    let raw = |pointer: &str| {
        action.raw_json().and_then(|json| {
            json.pointer(pointer)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
    };
    match name {
        "action" => Some(action.kind().as_str().to_owned()),
        "member" => action.member_name(),
        "board" => data
            .board
            .as_ref()
            .and_then(|b| b.name.clone())
            .or_else(|| action.payload().model.as_ref().and_then(|m| m.name.clone())),
        "list" => data
            .list
            .as_ref()
            .or(data.list_after.as_ref())
            .and_then(|l| l.name.clone()),
        "list_before" => match action.card_update() {
            Some(CardUpdate::MovedBetweenLists { from, .. }) => {
                Some(from.name.clone().unwrap_or_else(|| from.id.clone()))
            }
            _ => None,
        },
        "list_after" => match action.card_update() {
            Some(CardUpdate::MovedBetweenLists { to, .. }) => {
                Some(to.name.clone().unwrap_or_else(|| to.id.clone()))
            }
            _ => None,
        },
        "card" => data.card.as_ref().and_then(|c| {
            c.name
                .clone()
                .or_else(|| c.id_short.map(|n| format!("card #{n}")))
        }),
        "card_url" => action.card_url(),
        "text" => data.text.clone(),
        "label" => data
            .label
            .as_ref()
            .and_then(|l| l.name.clone().filter(|n| !n.is_empty()).or(l.color.clone())),
        "added_member" => data
            .member
            .as_ref()
            .and_then(|m| m.name.clone())
            .or_else(|| {
                action
                    .payload()
                    .action
                    .member
                    .as_ref()
                    .and_then(|m| m.full_name.clone().or(m.username.clone()))
            }),
        "checklist" => data.checklist.as_ref().and_then(|c| c.name.clone()),
        "check_item" => data.check_item.as_ref().and_then(|c| c.name.clone()),
        "state" => data
            .check_item
            .as_ref()
            .and_then(|c| c.state.as_ref())
            .map(|s| s.as_str().to_owned()),
        "attachment" => raw("/action/data/attachment/name"),
        "changes" => {
            let changes = action.field_changes();
            (!changes.is_empty()).then(|| {
                changes
                    .iter()
                    .map(change_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        }
        "field" => action.field_changes().first().map(|c| c.field.clone()),
        "old" => match action.card_update() {
            Some(CardUpdate::Renamed { from, .. }) => Some(from.clone()),
            _ => action.field_changes().first().map(|c| show(&c.old)),
        },
        "new" => match action.card_update() {
            Some(CardUpdate::Renamed { to, .. }) => Some(to.clone()),
            _ => action.field_changes().first().map(|c| show(&c.new)),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_keys_are_unique() {
        assert_eq!(defaults().len(), DEFAULTS.len());
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        assert!(
            Template::parse("{member} did {nope}")
                .unwrap_err()
                .contains("`{nope}`")
        );
        assert!(
            Template::parse("{member")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(Template::parse("a } b").is_err());
        let literal = Template::parse("{{literal}} {card}").unwrap();
        assert_eq!(literal.0.fields().collect::<Vec<_>>(), [&"card"]);
        assert_eq!(literal.0.render(|f| f.to_uppercase()), "{literal} CARD");
    }
}
