//! The rule: a Travis CI build notification, matched against the routes, becomes one chat
//! message per target that wants its event.

use std::sync::Arc;

use async_trait::async_trait;
use hookbridge_core::{Event, RuleError, RuleOutcome, SyncRule};
use hookbridge_providers::sinks::Notifier;
use hookbridge_providers::travis::events::{BuildNotification, TravisEvent};

use super::TravisChat;
use super::fanout::Progress;
use super::message::{message, message_key};
use super::outcome::{BuildEvent, Finished, classify};
use super::routes::RouteSink;
use crate::engine::RuleContext;
use crate::integrations::IntegrationError;
use crate::integrations::endpoint::on_endpoint;

/// The integration's one rule, named after it.
pub(super) struct TravisChatRule {
    pub(super) chat: Arc<TravisChat>,
}

/// A target that wants the message.
struct Wanted {
    name: String,
    sink: Option<RouteSink>,
}

#[async_trait]
impl SyncRule<RuleContext> for TravisChatRule {
    fn name(&self) -> &str {
        &self.chat.name
    }

    fn matches(&self, event: &Event) -> bool {
        event.provider() == hookbridge_providers::travis::KIND
    }

    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        if !on_endpoint(ctx, self.chat.endpoint.as_ref()).await? {
            return Ok(RuleOutcome::Skipped {
                reason: "delivered to another endpoint".into(),
            });
        }
        let Some(TravisEvent::Build(build)) = event.payload::<TravisEvent>() else {
            return Ok(RuleOutcome::Skipped {
                reason: "not a build notification this version can read".into(),
            });
        };
        let slug = build.repository.slug();
        let kind = self.classify(ctx, build, &slug).await?;
        let store = ctx.store.as_ref();
        let routes = self.chat.all_routes(store).await.map_err(store_error)?;
        let routes: Vec<_> = routes.into_iter().filter(|r| r.matches(&slug)).collect();
        if routes.is_empty() {
            tracing::debug!(integration = %self.chat.name, repo = %slug, "no route: dropped");
            return Ok(applied(format!("dropped: no route for {slug}")));
        }
        let Some(kind) = kind else {
            return Ok(applied(format!(
                "dropped: build state `{}` of {slug} is not one this version knows",
                build.state
            )));
        };
        let defaults = self
            .chat
            .effective_defaults(store)
            .await
            .map_err(store_error)?;
        let mut wanted: Vec<Wanted> = Vec::new();
        for route in &routes {
            let filter = route.events.as_ref().unwrap_or(&defaults.events);
            if !filter.wants(kind) {
                continue;
            }
            let names = match &route.target {
                Some(target) => vec![target.clone()],
                None => defaults.targets.clone(),
            };
            for name in names {
                if !wanted.iter().any(|w| w.name == name) {
                    wanted.push(Wanted {
                        name,
                        sink: route.sink.clone(),
                    });
                }
            }
        }
        if wanted.is_empty() {
            return Ok(applied(format!(
                "dropped: no route of {slug} wants `{kind}`"
            )));
        }
        self.notify(ctx, event, build, kind, &slug, wanted).await
    }
}

impl TravisChatRule {
    /// The build's event, and the branch's result remembered for the next build. A retry
    /// or restart of the same build compares with the result before it, not with itself.
    async fn classify(
        &self,
        ctx: &RuleContext,
        build: &BuildNotification,
        slug: &str,
    ) -> Result<Option<BuildEvent>, RuleError> {
        let line = if build.is_pull_request() {
            format!("pr-{}", build.pull_request_number.unwrap_or_default())
        } else {
            build.branch.clone().unwrap_or_default()
        };
        let key = format!("last-result:{slug}:{line}");
        let stored = ctx.state(&key).await?;
        let field = |name: &str| -> Option<Finished> {
            stored
                .as_ref()
                .and_then(|s| s.get(name))
                .and_then(|v| serde_json::from_value(v.clone()).ok())
        };
        let same_build = stored
            .as_ref()
            .and_then(|s| s.get("build"))
            .and_then(serde_json::Value::as_u64)
            == Some(build.id);
        let previous = if same_build {
            field("previous")
        } else {
            field("result")
        };
        let event = classify(build, previous);
        if let Some(result) = Finished::of(build)
            && !(same_build && field("result") == Some(result))
        {
            let record =
                serde_json::json!({"build": build.id, "result": result, "previous": previous});
            ctx.put_state(&key, &record).await?;
        }
        Ok(event)
    }

    async fn notify(
        &self,
        ctx: &RuleContext,
        event: &Event,
        build: &BuildNotification,
        kind: BuildEvent,
        slug: &str,
        wanted: Vec<Wanted>,
    ) -> Result<RuleOutcome, RuleError> {
        let key = message_key(build);
        let scope = event
            .subject()
            .map_or_else(|| key.clone(), |s| s.to_string());
        let mut progress = Progress::load(ctx, &scope, &key).await?;
        let number = build.number.as_deref().unwrap_or("?");
        let mut errors = Vec::new();
        let mut sent = 0;
        for target in wanted {
            if progress.is_done(&target.name) {
                ctx.record(format!("already notified {}", target.name));
                continue;
            }
            let notifier: Arc<dyn Notifier> = match &target.sink {
                Some(sink) => match sink.notifier() {
                    Ok(n) => n,
                    Err(message) => {
                        errors.push(RuleError::Permanent {
                            message: format!("target {}: {message}", target.name),
                        });
                        continue;
                    }
                },
                None => match self
                    .chat
                    .connections
                    .notifier(&self.chat.name, &target.name)
                {
                    Ok(n) => n,
                    Err(e) => {
                        errors.push(RuleError::Permanent {
                            message: e.to_string(),
                        });
                        continue;
                    }
                },
            };
            let message = message(&self.chat.prefix, build, kind, &key, &target.name);
            let done = ctx
                .perform(
                    "chat",
                    format!("notify {}: {slug} #{number} {kind}", target.name),
                    async { notifier.notify(&message).await.map_err(RuleError::from) },
                )
                .await;
            match done {
                Ok(Some(())) => {
                    sent += 1;
                    progress.mark(ctx, &target.name).await?;
                }
                Ok(None) => {}
                Err(error) => errors.push(for_target(&target.name, error)),
            }
        }
        match errors.len() {
            0 => Ok(RuleOutcome::Applied {
                actions: Vec::new(),
            }),
            // Nothing else was done: the error as it is, so its kind decides the retry.
            1 if sent == 0 => Err(errors.remove(0)),
            _ => Err(RuleError::Partial(errors)),
        }
    }
}

fn applied(action: String) -> RuleOutcome {
    RuleOutcome::Applied {
        actions: vec![action],
    }
}

/// A failure reading the routes: transient when the store failed, permanent when what it
/// holds cannot be read (a retry would read the same).
fn store_error(error: IntegrationError) -> RuleError {
    match error {
        IntegrationError::Store { .. } => RuleError::Transient {
            message: error.to_string(),
            retry_after: None,
        },
        other => RuleError::Permanent {
            message: other.to_string(),
        },
    }
}

/// The error, saying which target it is about.
fn for_target(target: &str, error: RuleError) -> RuleError {
    match error {
        RuleError::Transient {
            message,
            retry_after,
        } => RuleError::Transient {
            message: format!("target {target}: {message}"),
            retry_after,
        },
        RuleError::Permanent { message } => RuleError::Permanent {
            message: format!("target {target}: {message}"),
        },
        partial @ RuleError::Partial(_) => partial,
    }
}
