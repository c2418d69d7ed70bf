//! The rule: each Trello action goes to the notify blocks that want it and to the
//! handlers that want it, each step done once even when the job is retried.

use std::sync::Arc;

use async_trait::async_trait;
use hookbridge_core::{Event, RuleError, RuleOutcome, SyncRule};
use hookbridge_providers::sinks::Message;

use super::TrelloHooks;
use super::action::TrelloAction;
use crate::engine::RuleContext;
use crate::integrations::endpoint::on_endpoint;
use crate::integrations::travis_chat::{Progress, key_part};

/// The integration's one rule, named after it.
pub(super) struct TrelloHooksRule {
    pub(super) hooks: Arc<TrelloHooks>,
}

#[async_trait]
impl SyncRule<RuleContext> for TrelloHooksRule {
    fn name(&self) -> &str {
        &self.hooks.name
    }

    fn matches(&self, event: &Event) -> bool {
        event.provider() == hookbridge_providers::trello::KIND
    }

    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        let hooks = &self.hooks;
        if !on_endpoint(ctx, hooks.endpoint.as_ref()).await? {
            return Ok(skipped("delivered to another endpoint"));
        }
        let Some(action) = TrelloAction::from_event(event) else {
            return Ok(skipped("not a Trello action this version can type"));
        };
        if !hooks.boards.is_empty()
            && !action
                .board_id()
                .is_some_and(|id| hooks.boards.iter().any(|b| b == id))
        {
            return Ok(skipped("on a board this integration does not follow"));
        }
        let key = action.key();
        let action_id = action.action().id.clone();
        let message_key = format!("trello-{}", key_part(&action_id));
        let scope = event
            .subject()
            .map_or_else(|| message_key.clone(), |s| s.to_string());
        let mut progress = Progress::load(ctx, &scope, &message_key).await?;
        let mut errors = Vec::new();
        let mut wanted = 0;

        for (i, block) in hooks.notify.iter().enumerate() {
            let Some(template) = block.template_for(&action) else {
                continue;
            };
            let text = template.render(&action);
            for target in &block.targets {
                wanted += 1;
                let step = format!("notify[{i}]:{target}");
                if progress.is_done(&step) {
                    ctx.record(format!("already notified {target}"));
                    continue;
                }
                let notifier = match hooks.connections.notifier(&hooks.name, target) {
                    Ok(n) => n,
                    Err(e) => {
                        errors.push(RuleError::Permanent {
                            message: e.to_string(),
                        });
                        continue;
                    }
                };
                let message = chat_message(&action, &text, &message_key, target);
                let done = ctx
                    .perform("chat", format!("notify {target}: {key}"), async {
                        notifier.notify(&message).await.map_err(RuleError::from)
                    })
                    .await;
                match done {
                    Ok(Some(())) => progress.mark(ctx, &step).await?,
                    Ok(None) => {}
                    Err(error) => errors.push(prefixed(&format!("target {target}"), error)),
                }
            }
        }

        for handler in hooks.handlers() {
            if !handler.wants(&action) {
                continue;
            }
            wanted += 1;
            let step = format!("handler:{}", handler.name());
            if progress.is_done(&step) {
                ctx.record(format!("handler {} already ran", handler.name()));
                continue;
            }
            match handler.handle(ctx, &action).await {
                Ok(()) => {
                    if !ctx.dry_run() {
                        progress.mark(ctx, &step).await?;
                    }
                }
                Err(error) => {
                    errors.push(prefixed(&format!("handler {}", handler.name()), error));
                }
            }
        }

        if wanted == 0 {
            return Ok(skipped(&format!("no notification or handler wants {key}")));
        }
        match errors.len() {
            0 => Ok(RuleOutcome::Applied {
                actions: Vec::new(),
            }),
            1 => Err(errors.remove(0)),
            _ => Err(RuleError::Partial(errors)),
        }
    }
}

fn skipped(reason: &str) -> RuleOutcome {
    RuleOutcome::Skipped {
        reason: reason.to_owned(),
    }
}

/// The chat message: the rendered line, a link to the card, and the action's key and
/// board as fields.
fn chat_message(action: &TrelloAction<'_>, text: &str, key: &str, target: &str) -> Message {
    let mut message = Message::new(format!("{key}-{}", key_part(target)), text)
        .with_field("Action", action.key());
    if let Some(board) = action
        .board()
        .and_then(|b| b.name.clone())
        .or_else(|| action.payload().model.as_ref().and_then(|m| m.name.clone()))
    {
        message = message.with_field("Board", board);
    }
    if let Some(url) = action.card_url() {
        message = message.with_url(url);
    }
    message
}

fn prefixed(what: &str, error: RuleError) -> RuleError {
    match error {
        RuleError::Transient {
            message,
            retry_after,
        } => RuleError::Transient {
            message: format!("{what}: {message}"),
            retry_after,
        },
        RuleError::Permanent { message } => RuleError::Permanent {
            message: format!("{what}: {message}"),
        },
        RuleError::Partial(errors) => {
            RuleError::Partial(errors.into_iter().map(|e| prefixed(what, e)).collect())
        }
    }
}
