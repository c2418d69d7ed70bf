//! GitHub -> Asana (`kind = "github-asana"`): issues and pull requests become Asana tasks,
//! as Unidata's AsanaBot did, with what it lacked.
//!
//! - An issue or pull request of a mapped repository (fnmatch patterns on `owner/repo`,
//!   first match wins) gets a task in the mapped project, named and described from
//!   templates, assigned to the mapped Asana user of its first mapped GitHub assignee, or,
//!   for a pull request without one, to one of its requested reviewers in turn.
//! - Title, body and assignee changes follow; closing completes the task and reopening
//!   reopens it. A completed task is reopened only by `opened`, `reopened`, `assigned` or
//!   `ready_for_review`: a stale event (an `edited` delivered after the close) never
//!   reopens it, and the engine also skips events older than one already applied.
//! - What hookbridge wrote is remembered in the link (`github:owner/repo#N` ->
//!   `asana:<gid>`), and a field is written only when GitHub's side of it changed: a task
//!   renamed or reassigned by hand in Asana keeps that until GitHub changes again.
//!   Asana's external ids (OAuth apps only) are not used.
//! - A create is never duplicated by a retry (see `tasks.rs`: a pending marker, and a search
//!   of the project for the item's URL when an earlier attempt may have created the task).

mod assign;
mod config;
mod item;
pub(crate) mod tasks;
pub(crate) mod template;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{EndpointName, Event, RuleError, RuleOutcome, SyncRule};
use hookbridge_providers::asana::client::{AsanaClient, NewTask, TaskUpdate};
use hookbridge_providers::github::client::GithubClient;
use serde::{Deserialize, Serialize};

pub use config::{Config, Object, ProjectMapping};

use self::assign::Assignee;
use self::config::{Settings, is_gid};
use self::item::Item;
use self::tasks::{Created, Recognise};
use super::{Connections, Handle, Integration, IntegrationError};
use crate::engine::RuleContext;
use crate::integrations::endpoint::on_endpoint;

/// A built `github-asana` integration: its rule (named after the integration) and settings.
pub struct GithubAsana {
    name: String,
    settings: Settings,
    asana: AsanaClient,
    github: Option<GithubClient>,
    /// Project gids found by name: (workspace, lowercased name or `repo:<repo>`) -> gid.
    projects: Mutex<HashMap<(String, String), String>>,
}

impl fmt::Debug for GithubAsana {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubAsana")
            .field("name", &self.name)
            .field("config", &self.settings.config)
            .finish_non_exhaustive()
    }
}

/// Builds the integration `name`: one rule, no pollers.
pub fn build(
    name: &str,
    config: Config,
    connections: &Connections,
) -> Result<Integration, IntegrationError> {
    let asana = connections.asana(name, &config.asana)?;
    let github = config
        .github
        .as_deref()
        .map(|connection| connections.github(name, connection))
        .transpose()?;
    let settings = Settings::new(config).map_err(|message| IntegrationError::Config {
        integration: name.to_owned(),
        message,
    })?;
    let rule = Arc::new(GithubAsana {
        name: name.to_owned(),
        settings,
        asana,
        github,
        projects: Mutex::new(HashMap::new()),
    });
    Ok(Integration {
        name: name.to_owned(),
        rules: vec![rule.clone()],
        sources: Vec::new(),
        endpoints: Vec::new(),
        handle: Handle::GithubAsana(rule),
    })
}

/// What the link remembers of hookbridge's last write to the task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LinkData {
    /// The project it was created in.
    #[serde(default)]
    project: Option<String>,
    /// The item's page.
    #[serde(default)]
    url: Option<String>,
    /// The name last written.
    #[serde(default)]
    name: Option<String>,
    /// A digest of the notes last written (bodies can be long).
    #[serde(default)]
    notes_digest: Option<String>,
    /// The Asana user (as configured: gid or email) last assigned.
    #[serde(default)]
    assignee: Option<String>,
    /// That user's gid, as Asana answered.
    #[serde(default)]
    assignee_gid: Option<String>,
}

fn digest(text: &str) -> String {
    hmac(Algorithm::Sha256, b"hookbridge-notes", &[text.as_bytes()])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl GithubAsana {
    /// The integration's name (also its rule's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its settings.
    pub fn config(&self) -> &Config {
        &self.settings.config
    }

    fn render(&self, item: &Item) -> (String, String) {
        let number = item.number.to_string();
        let name = self
            .settings
            .name
            .render(|field| item.field(field, &number));
        let notes = self
            .settings
            .notes
            .render(|field| item.field(field, &number));
        (name, notes)
    }

    /// The project gid for a new task of `item`, `None` when none is mapped.
    async fn project_for(&self, item: &Item) -> Result<Option<String>, RuleError> {
        let settings = &self.settings;
        if let Some((index, mapping)) = settings.project_mapping(&item.full_name) {
            if is_gid(&mapping.project) {
                return Ok(Some(mapping.project.clone()));
            }
            let Some(workspace) = settings.workspace(&item.owner) else {
                return Err(RuleError::Permanent {
                    message: format!(
                        "projects[{index}].project `{}` is a name, and no workspace is mapped for `{}` (workspaces)",
                        mapping.project, item.owner
                    ),
                });
            };
            let wanted = mapping.project.to_lowercase();
            let found = self
                .find_project(workspace, wanted.clone(), |name| {
                    name.to_lowercase() == wanted
                })
                .await?;
            return match found {
                Some(gid) => Ok(Some(gid)),
                None => Err(RuleError::Permanent {
                    message: format!(
                        "projects[{index}].project: no project named `{}` in workspace {workspace}",
                        mapping.project
                    ),
                }),
            };
        }
        if settings.config.project_by_repo_name
            && let Some(workspace) = settings.workspace(&item.owner)
        {
            let repo = item.repo.to_lowercase();
            // AsanaBot's rule: the project's name, lowercased with spaces as hyphens.
            return self
                .find_project(workspace, format!("repo:{repo}"), |name| {
                    name.to_lowercase().replace(' ', "-") == repo
                })
                .await;
        }
        Ok(None)
    }

    async fn find_project(
        &self,
        workspace: &str,
        cache_key: String,
        matches: impl Fn(&str) -> bool,
    ) -> Result<Option<String>, RuleError> {
        let key = (workspace.to_owned(), cache_key);
        if let Some(gid) = self.projects.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(Some(gid));
        }
        let mut projects = std::pin::pin!(self.asana.projects(workspace, Some(false)));
        while let Some(project) = projects.try_next().await.map_err(RuleError::from)? {
            if matches(&project.name) {
                if let Ok(mut cache) = self.projects.lock() {
                    cache.insert(key, project.gid.clone());
                }
                return Ok(Some(project.gid));
            }
        }
        Ok(None)
    }

    async fn create(
        &self,
        ctx: &RuleContext,
        item: &Item,
        key: &str,
    ) -> Result<RuleOutcome, RuleError> {
        if item.closed && !self.settings.config.create_closed {
            // Applied, not skipped: the engine then records this state's time, so an older
            // `opened` delivered late is recognised as stale and creates no open task.
            ctx.record(format!("{key} is closed and has no task: none created"));
            return Ok(RuleOutcome::Applied {
                actions: Vec::new(),
            });
        }
        let Some(project) = self.project_for(item).await? else {
            return Ok(RuleOutcome::Skipped {
                reason: format!("no Asana project is mapped for {}", item.full_name),
            });
        };
        let assignee = assign::choose(self, ctx, item).await?;
        if item.object == Object::Issues
            && !self.settings.config.create_unassigned_issues
            && assignee == Assignee::Nobody
        {
            return Ok(RuleOutcome::Skipped {
                reason: format!("{key} has no mapped assignee (create_unassigned_issues = false)"),
            });
        }
        let (name, notes) = self.render(item);
        let mut task = NewTask::in_project(project.clone(), name.clone()).notes(notes.clone());
        if let Some(user) = assignee.user() {
            task = task.assignee(user);
        }
        if item.closed {
            task.completed = Some(true);
        }
        let recognise = if self.settings.notes.uses("url") {
            Recognise::NotesContain(item.url.clone())
        } else {
            Recognise::Named(name.clone())
        };
        let created = tasks::create_once(ctx, &self.asana, key, &project, task, &recognise).await?;
        let task = match created {
            Created::DryRun => {
                ctx.record(format!("would link {key} to the new task"));
                return Ok(RuleOutcome::Applied {
                    actions: Vec::new(),
                });
            }
            Created::Recovered(task) => {
                // Linked with what is known of it; the update below brings it to the
                // item's state.
                let data = LinkData {
                    project: Some(project.clone()),
                    url: Some(item.url.clone()),
                    ..LinkData::default()
                };
                self.put_link(ctx, key, &task.gid, &data).await?;
                tasks::clear_pending(ctx, key).await?;
                // Applied either way: the link was written.
                return match self
                    .update(ctx, item, &tasks::task_key(&task.gid), data)
                    .await?
                {
                    RuleOutcome::Skipped { reason } => {
                        ctx.record(reason);
                        Ok(RuleOutcome::Applied {
                            actions: Vec::new(),
                        })
                    }
                    applied => Ok(applied),
                };
            }
            Created::New(task) => task,
        };
        tasks::mark_task_writes(ctx, &task, &["name", "notes", "assignee", "completed"]).await?;
        let data = LinkData {
            project: Some(project),
            url: Some(item.url.clone()),
            name: Some(name),
            notes_digest: Some(digest(&notes)),
            assignee: assignee.user().map(str::to_owned),
            assignee_gid: task.assignee.as_ref().map(|a| a.gid.clone()),
        };
        self.put_link(ctx, key, &task.gid, &data).await?;
        tasks::clear_pending(ctx, key).await?;
        tracing::info!(rule = %self.name, object = key, task = %task.gid, "task created");
        Ok(RuleOutcome::Applied {
            actions: Vec::new(),
        })
    }

    async fn put_link(
        &self,
        ctx: &RuleContext,
        key: &str,
        gid: &str,
        data: &LinkData,
    ) -> Result<(), RuleError> {
        let value = serde_json::to_value(data).map_err(|e| RuleError::Permanent {
            message: format!("link data: {e}"),
        })?;
        ctx.put_link(key, &tasks::task_key(gid), value).await
    }

    async fn update(
        &self,
        ctx: &RuleContext,
        item: &Item,
        task_key: &str,
        data: LinkData,
    ) -> Result<RuleOutcome, RuleError> {
        let key = item.key();
        let Some(gid) = tasks::task_gid(task_key) else {
            return Err(RuleError::Permanent {
                message: format!("{key} is linked to `{task_key}`, which is not an Asana task"),
            });
        };
        let Some(task) = self.asana.find_task(gid).await.map_err(RuleError::from)? else {
            return Ok(RuleOutcome::Skipped {
                reason: format!("task {gid} of {key} was deleted in Asana; not re-created"),
            });
        };
        let (name, notes) = self.render(item);
        let notes_digest = digest(&notes);
        let mut desired = TaskUpdate::default();
        // Fields are written when GitHub's side changed since hookbridge last wrote them, so
        // an edit made in Asana stays until GitHub changes that field again.
        if data.name.as_deref() != Some(name.as_str()) {
            desired.name = Some(name.clone());
        }
        if data.notes_digest.as_deref() != Some(notes_digest.as_str()) {
            desired.notes = Some(notes.clone());
        }
        let assignee = assign::choose(self, ctx, item).await?;
        match assignee.user() {
            Some(user) if data.assignee.as_deref() != Some(user) => {
                desired.assignee = Some(Some(user.to_owned()));
            }
            Some(_) => {}
            None => {
                // Unassign only an assignee hookbridge set; someone assigned in Asana stays.
                let ours = data.assignee_gid.is_some()
                    && task.assignee.as_ref().map(|a| &a.gid) == data.assignee_gid.as_ref();
                if ours {
                    desired.assignee = Some(None);
                }
            }
        }
        let mut kept_completed = false;
        if item.closed {
            desired.completed = Some(true);
        } else if !task.completed || item.may_reopen() {
            desired.completed = Some(false);
        } else {
            kept_completed = true;
        }
        let changes = desired.changes_from(&task);
        let new_data = LinkData {
            project: data.project.clone(),
            url: Some(item.url.clone()),
            name: Some(name),
            notes_digest: Some(notes_digest),
            assignee: assignee.user().map(str::to_owned),
            // Which gid is hookbridge's assignee, if no write changes it below: the task's
            // when it already had the one wanted, none when GitHub has nobody mapped.
            assignee_gid: match (&desired.assignee, assignee.user()) {
                (Some(Some(_)), _) => task.assignee.as_ref().map(|a| a.gid.clone()),
                (Some(None), _) | (None, None) => None,
                (None, Some(_)) => data.assignee_gid.clone(),
            },
        };
        if changes.is_empty() {
            if new_data != data {
                self.put_link(ctx, &key, gid, &new_data).await?;
            }
            let reason = if kept_completed {
                format!(
                    "task {gid} is completed and `{}` does not reopen it",
                    item.action
                )
            } else {
                format!("task {gid} already matches {key}")
            };
            return Ok(RuleOutcome::Skipped { reason });
        }
        let fields = changed_fields(&changes);
        let written = ctx
            .perform(
                "asana",
                format!("update task {gid} ({}) from {key}", fields.join(", ")),
                async {
                    self.asana
                        .update_task(gid, &changes)
                        .await
                        .map_err(RuleError::from)
                },
            )
            .await?;
        let Some(written) = written else {
            return Ok(RuleOutcome::Applied {
                actions: Vec::new(),
            });
        };
        tasks::mark_task_writes(ctx, &written, &fields).await?;
        let new_data = LinkData {
            assignee_gid: if changes.assignee.is_some() {
                written.assignee.as_ref().map(|a| a.gid.clone())
            } else {
                new_data.assignee_gid
            },
            ..new_data
        };
        self.put_link(ctx, &key, gid, &new_data).await?;
        if kept_completed {
            ctx.record(format!(
                "left task {gid} completed: `{}` does not reopen it",
                item.action
            ));
        }
        Ok(RuleOutcome::Applied {
            actions: Vec::new(),
        })
    }
}

fn changed_fields(changes: &TaskUpdate) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if changes.name.is_some() {
        fields.push("name");
    }
    if changes.notes.is_some() {
        fields.push("notes");
    }
    if changes.assignee.is_some() {
        fields.push("assignee");
    }
    if changes.completed.is_some() {
        fields.push("completed");
    }
    fields
}

#[async_trait]
impl SyncRule<RuleContext> for GithubAsana {
    fn name(&self) -> &str {
        &self.name
    }

    fn matches(&self, event: &Event) -> bool {
        if event.provider().as_str() != "github" {
            return false;
        }
        let name = event.name().as_str();
        if !(name.starts_with("issues.") || name.starts_with("pull_request.")) {
            return false;
        }
        Item::peek(event).is_some_and(|(object, full_name, owner)| {
            self.settings.takes(object) && self.settings.covers(full_name, owner)
        })
    }

    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        if let Some(endpoint) = self.settings.config.endpoint.as_deref()
            && !on_endpoint(ctx, Some(&EndpointName::new(endpoint))).await?
        {
            return Ok(RuleOutcome::Skipped {
                reason: "delivered to another endpoint".into(),
            });
        }
        let Some(item) = Item::from_event(event) else {
            return Ok(RuleOutcome::Skipped {
                reason: "not an issue or pull request event".into(),
            });
        };
        if !self.settings.takes(item.object) {
            return Ok(RuleOutcome::Skipped {
                reason: format!("{}s are not synced (objects)", item.kind()),
            });
        }
        if matches!(item.action.as_str(), "deleted" | "transferred") {
            return Ok(RuleOutcome::Skipped {
                reason: format!(
                    "{} was {} on GitHub; its task is left as it is",
                    item.key(),
                    item.action
                ),
            });
        }
        let key = item.key();
        match ctx.link_from(&key).await? {
            Some(link) => {
                let data: LinkData = serde_json::from_value(link.data).unwrap_or_default();
                self.update(ctx, &item, &link.b, data).await
            }
            None => self.create(ctx, &item, &key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_and_distinct() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(digest("").len(), 64);
    }

    #[test]
    fn lists_changed_fields() {
        let changes = TaskUpdate {
            name: Some("n".into()),
            completed: Some(true),
            ..TaskUpdate::default()
        };
        assert_eq!(changed_fields(&changes), vec!["name", "completed"]);
    }
}
