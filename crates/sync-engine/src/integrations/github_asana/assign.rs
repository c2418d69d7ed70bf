//! Who a task is assigned to: the first mapped GitHub assignee; for a pull request without
//! one, one of its requested reviewers, in turn (a durable counter per repository in the
//! rule's state, so restarts and several instances continue the same rotation).

use std::future::Future;
use std::time::{Duration, Instant};

use hookbridge_core::RuleError;
use hookbridge_providers::github::client::Repo;
use time::OffsetDateTime;

use super::GithubAsana;
use super::config::Object;
use super::item::Item;
use crate::engine::RuleContext;

/// The assignee chosen for an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Assignee {
    /// A GitHub assignee with a mapped Asana user.
    Mapped {
        /// The GitHub login.
        login: String,
        /// The Asana user (gid or email).
        user: String,
    },
    /// A requested reviewer chosen in turn.
    Reviewer {
        /// The GitHub login.
        login: String,
        /// The Asana user (gid or email).
        user: String,
    },
    /// Nobody mapped.
    Nobody,
}

impl Assignee {
    /// The Asana user, if any.
    pub(crate) fn user(&self) -> Option<&str> {
        match self {
            Assignee::Mapped { user, .. } | Assignee::Reviewer { user, .. } => Some(user),
            Assignee::Nobody => None,
        }
    }
}

/// Chooses the assignee of `item`.
pub(crate) async fn choose(
    rule: &GithubAsana,
    ctx: &RuleContext,
    item: &Item,
) -> Result<Assignee, RuleError> {
    let settings = &rule.settings;
    if let Some((login, user)) = item
        .assignees
        .iter()
        .find_map(|login| settings.user(login).map(|user| (login, user)))
    {
        return Ok(Assignee::Mapped {
            login: login.clone(),
            user: user.to_owned(),
        });
    }
    if item.object != Object::PullRequests || !settings.config.reviewers_round_robin {
        return Ok(Assignee::Nobody);
    }
    // A reviewer chosen earlier stays the assignee: GitHub drops reviewers from the requested
    // list once they review, and the task should not hop to the next one then.
    let choice_key = format!("reviewer:{}", item.key());
    if let Some(login) = ctx
        .state(&choice_key)
        .await?
        .and_then(|v| v.get("login")?.as_str().map(str::to_owned))
        && let Some(user) = settings.user(&login)
    {
        return Ok(Assignee::Reviewer {
            login,
            user: user.to_owned(),
        });
    }
    let reviewers = match &item.requested_reviewers {
        Some(reviewers) => reviewers.clone(),
        None => fetch_reviewers(rule, item).await?,
    };
    let candidates: Vec<(String, String)> = reviewers
        .iter()
        .filter_map(|login| settings.user(login).map(|u| (login.clone(), u.to_owned())))
        .collect();
    if candidates.is_empty() {
        return Ok(Assignee::Nobody);
    }
    let counter_key = format!("round-robin:{}", item.full_name.to_ascii_lowercase());
    let pick = |n: u64| {
        let index = usize::try_from(n % candidates.len() as u64).unwrap_or(0);
        candidates[index].clone()
    };
    if ctx.dry_run() {
        let n = counter(ctx, &counter_key).await?;
        let (login, user) = pick(n);
        return Ok(Assignee::Reviewer { login, user });
    }
    let lock = format!(
        "round-robin:{}:{}",
        ctx.rule(),
        item.full_name.to_ascii_lowercase()
    );
    locked(ctx, &lock, async {
        let n = counter(ctx, &counter_key).await?;
        let (login, user) = pick(n);
        // The choice first: a crash before the counter moves repeats an index once, never
        // assigns one pull request twice.
        ctx.put_state(&choice_key, &serde_json::json!({ "login": login }))
            .await?;
        ctx.put_state(&counter_key, &serde_json::json!(n.wrapping_add(1)))
            .await?;
        ctx.record(format!(
            "chose reviewer {login} (turn {n}) as the assignee of {}",
            item.key()
        ));
        Ok(Assignee::Reviewer { login, user })
    })
    .await
}

async fn counter(ctx: &RuleContext, key: &str) -> Result<u64, RuleError> {
    Ok(ctx.state(key).await?.and_then(|v| v.as_u64()).unwrap_or(0))
}

/// The requested reviewers through the GitHub connection, when one is configured.
async fn fetch_reviewers(rule: &GithubAsana, item: &Item) -> Result<Vec<String>, RuleError> {
    let Some(github) = &rule.github else {
        return Ok(Vec::new());
    };
    let repo =
        Repo::new(item.owner.clone(), item.repo.clone()).map_err(|e| RuleError::Permanent {
            message: format!("repository {}: {e}", item.full_name),
        })?;
    let users = github
        .requested_reviewers(&repo, item.number)
        .await
        .map_err(RuleError::from)?;
    Ok(users.into_iter().map(|u| u.login).collect())
}

/// Runs `f` holding the store lease `name` (one holder across instances), so that two
/// pull requests of one repository never read the same counter value.
async fn locked<T, F>(ctx: &RuleContext, name: &str, f: F) -> Result<T, RuleError>
where
    F: Future<Output = Result<T, RuleError>>,
{
    let holder = ctx.idempotency_key();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if ctx
            .store
            .try_lease(
                name,
                &holder,
                Duration::from_secs(30),
                OffsetDateTime::now_utc(),
            )
            .await?
        {
            break;
        }
        if Instant::now() >= deadline {
            return Err(RuleError::Transient {
                message: format!("the lease {name} stayed taken"),
                retry_after: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let result = f.await;
    if let Err(error) = ctx.store.release_lease(name, &holder).await {
        // It lapses by itself after its time to live.
        tracing::warn!(lease = name, %error, "cannot release the round-robin lease");
    }
    result
}
