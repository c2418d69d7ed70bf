//! What the chat integrations share: remembering which targets of a message were already
//! served (so a retried or replayed job does not post twice).

use std::collections::BTreeSet;

use hookbridge_core::RuleError;

use crate::engine::RuleContext;

/// The steps of one message (targets notified, handlers run) already done, kept in the
/// rule's state under `progress:<scope>`.
///
/// The scope is the event's subject when it has one: jobs of one rule and subject run one
/// at a time, so reading and then writing the record cannot race, and one record per
/// object bounds what is kept. `key` names the message; a record of another key (an
/// earlier message about the same object) counts for nothing.
pub(in crate::integrations) struct Progress {
    state_key: String,
    key: String,
    done: BTreeSet<String>,
}

impl Progress {
    /// The progress of message `key` about `scope`.
    pub(in crate::integrations) async fn load(
        ctx: &RuleContext,
        scope: &str,
        key: &str,
    ) -> Result<Self, RuleError> {
        let state_key = format!("progress:{scope}");
        let done = match ctx.state(&state_key).await? {
            Some(record) if record.get("key").and_then(|k| k.as_str()) == Some(key) => record
                .get("done")
                .and_then(|d| d.as_array())
                .map(|steps| {
                    steps
                        .iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            _ => BTreeSet::new(),
        };
        Ok(Self {
            state_key,
            key: key.to_owned(),
            done,
        })
    }

    /// Whether `step` was already done for this message.
    pub(in crate::integrations) fn is_done(&self, step: &str) -> bool {
        self.done.contains(step)
    }

    /// Records `step` as done, durably, before the next one runs.
    pub(in crate::integrations) async fn mark(
        &mut self,
        ctx: &RuleContext,
        step: &str,
    ) -> Result<(), RuleError> {
        self.done.insert(step.to_owned());
        let record = serde_json::json!({"key": self.key, "done": self.done});
        ctx.put_state(&self.state_key, &record).await
    }
}

/// A key part made of what sinks accept in an idempotency key (Matrix transaction ids go
/// in a URL path): ASCII letters, digits, `-`, `_`, `.`; anything else becomes `_`.
pub(in crate::integrations) fn key_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_are_url_safe() {
        assert_eq!(key_part("ops-slack"), "ops-slack");
        assert_eq!(key_part("acme/app #1"), "acme_app__1");
    }
}
