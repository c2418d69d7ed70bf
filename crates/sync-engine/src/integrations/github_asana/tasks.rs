//! Creating an Asana task at most once per object, shared by `github-asana` and
//! `feed-asana`.
//!
//! Asana's `POST /tasks` takes no idempotency key, and a create whose answer is lost (a
//! timeout, a 5xx after the write, a worker killed before the link is stored) is retried by
//! the engine. So before creating, the rule stores a *pending* marker for the object in its
//! state; the link replaces it once the task exists. A job that finds the marker without a
//! link knows an earlier attempt may have created the task, and looks for it in the project
//! (recognised by the object's URL in its notes, else by its exact name) before creating
//! another. The search runs only on that recovery path, so the normal path costs nothing.

use futures_util::TryStreamExt as _;
use hookbridge_core::RuleError;
use hookbridge_providers::asana::client::{AsanaClient, NewTask, ProjectTasks, Task};
use time::OffsetDateTime;

use crate::engine::RuleContext;

/// The fields the recovery search reads: enough to recognise a task.
const RECOGNISE_FIELDS: &str = "name,notes,completed,assignee,created_at,projects";

/// How an earlier attempt's task is recognised in the project.
#[derive(Clone, Debug)]
pub(crate) enum Recognise {
    /// Its notes contain this text (the object's URL).
    NotesContain(String),
    /// Its name is exactly this.
    Named(String),
}

impl Recognise {
    fn matches(&self, task: &Task) -> bool {
        match self {
            Recognise::NotesContain(text) => task
                .notes
                .as_deref()
                .is_some_and(|notes| notes.contains(text.as_str())),
            Recognise::Named(name) => task.name == *name,
        }
    }
}

/// What [`create_once`] did.
#[derive(Debug)]
pub(crate) enum Created {
    /// A task was created now.
    New(Task),
    /// An earlier attempt had created it; it was found in the project.
    Recovered(Task),
    /// A dry run: nothing was created (the action is recorded).
    DryRun,
}

fn pending_key(object: &str) -> String {
    format!("pending:{object}")
}

/// Creates `task` for `object` in `project`, unless an earlier, interrupted attempt already
/// did (see the module's documentation). The caller stores the link, then calls
/// [`clear_pending`].
pub(crate) async fn create_once(
    ctx: &RuleContext,
    asana: &AsanaClient,
    object: &str,
    project: &str,
    task: NewTask,
    recognise: &Recognise,
) -> Result<Created, RuleError> {
    let key = pending_key(object);
    let pending = ctx.state(&key).await?.filter(|v| !v.is_null());
    if let Some(pending) = pending {
        tracing::info!(
            rule = ctx.rule(),
            object,
            project,
            "an earlier create may have succeeded; looking for its task"
        );
        let options = ProjectTasks {
            opt_fields: Some(RECOGNISE_FIELDS.to_owned()),
            ..ProjectTasks::default()
        };
        let since = pending.get("since").and_then(|s| s.as_str()).and_then(|s| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        });
        let mut tasks = std::pin::pin!(asana.tasks_for_project(project, &options));
        while let Some(found) = tasks.try_next().await.map_err(RuleError::from)? {
            // A task created before the first attempt began is someone else's.
            let recent = match (since, found.created_at) {
                (Some(since), Some(created)) => created >= since - time::Duration::minutes(5),
                _ => true,
            };
            if recent && recognise.matches(&found) {
                ctx.record(format!(
                    "found task {} created by an interrupted attempt",
                    found.gid
                ));
                return Ok(Created::Recovered(found));
            }
        }
    }
    if ctx.dry_run() {
        ctx.perform("asana", describe(object, project), async { Ok(()) })
            .await?;
        return Ok(Created::DryRun);
    }
    let now = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    ctx.put_state(&key, &serde_json::json!({ "since": now }))
        .await?;
    let created = ctx
        .perform("asana", describe(object, project), async {
            asana.create_task(&task).await.map_err(RuleError::from)
        })
        .await?;
    match created {
        Some(task) => Ok(Created::New(task)),
        None => Ok(Created::DryRun),
    }
}

fn describe(object: &str, project: &str) -> String {
    format!("create an Asana task for {object} in project {project}")
}

/// Forgets the pending marker of `object`, once its link is stored.
pub(crate) async fn clear_pending(ctx: &RuleContext, object: &str) -> Result<(), RuleError> {
    ctx.put_state(&pending_key(object), &serde_json::Value::Null)
        .await
}

/// The Asana object key of a task, as links store it.
pub(crate) fn task_key(gid: &str) -> String {
    format!("asana:{gid}")
}

/// The task gid of an Asana object key.
pub(crate) fn task_gid(key: &str) -> Option<&str> {
    key.strip_prefix("asana:").filter(|gid| !gid.is_empty())
}

/// Records hookbridge's writes to a task, so that a rule reading Asana's webhooks (another
/// integration, or a user's rule) recognises them as echoes with
/// `ctx.is_echo("asana", "<gid>.<field>", value)`.
pub(crate) async fn mark_task_writes(
    ctx: &RuleContext,
    task: &Task,
    fields: &[&str],
) -> Result<(), RuleError> {
    for field in fields {
        let value = match *field {
            "name" => task.name.clone(),
            "notes" => task.notes.clone().unwrap_or_default(),
            "completed" => task.completed.to_string(),
            "assignee" => task
                .assignee
                .as_ref()
                .map(|a| a.gid.clone())
                .unwrap_or_default(),
            _ => continue,
        };
        ctx.mark_write("asana", &format!("{}.{field}", task.gid), &value)
            .await?;
    }
    Ok(())
}

/// Plain text from the HTML of a feed summary or similar: tags dropped (block ends become
/// line breaks), the common entities decoded, runs of blank lines collapsed.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..open]));
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&decode_entities(&rest[open..]));
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close]
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if matches!(
            tag.as_str(),
            "p" | "br" | "div" | "li" | "pre" | "h1" | "h2" | "h3" | "h4" | "blockquote" | "tr"
        ) {
            out.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(&decode_entities(rest));
    let mut text = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 || text.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        text.push_str(line);
        text.push('\n');
    }
    text.trim_end().to_owned()
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|end| *end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text() {
        assert_eq!(
            html_to_text("<p>How do I parse <code>a &amp; b</code>?</p>\n<p>I tried&#x21;</p>"),
            "How do I parse a & b?\n\nI tried!"
        );
        assert_eq!(
            html_to_text("plain &unknown; & text"),
            "plain &unknown; & text"
        );
        assert_eq!(html_to_text("a <b>bold"), "a bold");
        assert_eq!(html_to_text("broken <tag"), "broken <tag");
    }

    #[test]
    fn task_keys() {
        assert_eq!(task_key("12"), "asana:12");
        assert_eq!(task_gid("asana:12"), Some("12"));
        assert_eq!(task_gid("asana:"), None);
        assert_eq!(task_gid("jira:X-1"), None);
    }
}
