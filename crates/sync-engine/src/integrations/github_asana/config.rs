//! The settings of a `github-asana` integration, and their validation.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::template::Template;
use crate::integrations::pattern;

/// The placeholders of `task_name` and `task_notes`.
pub(crate) const FIELDS: &[&str] = &[
    "title", "number", "url", "body", "repo", "org", "kind", "author",
];

/// The settings of a `github-asana` integration (`[[integrations]]` with
/// `kind = "github-asana"`).
///
/// ```
/// use hookbridge_sync_engine::integrations::github_asana::Config;
/// let config: Config = toml::from_str(r#"
///     asana = "asana"
///     workspaces = { "octo-org" = "1200000000000001" }
///     projects = [{ repo = "octo-org/octo-repo", project = "1204000000000001" },
///                 { repo = "octo-org/*", project = "Triage" }]
///     users = { octocat = "1205000000000001", monalisa = "mona@example.com" }
/// "#).unwrap();
/// assert_eq!(config.task_name, "{title} (#{number})");
/// assert!(config.reviewers_round_robin);
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Asana connection (`[connections.<name>]`, `kind = "asana"`) tasks are written with.
    pub asana: String,
    /// A GitHub connection, optional: used only to read a pull request's requested reviewers
    /// when a payload does not carry them (a replayed or hand-made delivery).
    #[serde(default)]
    pub github: Option<String>,
    /// The GitHub endpoint whose deliveries this integration acts on; none: every GitHub
    /// endpoint (deliveries of other endpoints are skipped when it is set).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// GitHub organization (or user) login -> Asana workspace gid; `*` is the fallback.
    /// Needed where projects are given by name (and for `project_by_repo_name`).
    #[serde(default)]
    pub workspaces: BTreeMap<String, String>,
    /// Repository patterns (fnmatch on `owner/repo`, no case) -> Asana project (a gid, or a
    /// project name looked up in the owner's workspace). The first matching entry wins.
    #[serde(default)]
    pub projects: Vec<ProjectMapping>,
    /// Without a matching `projects` entry, use the project of the owner's workspace whose
    /// name, lowercased with spaces as hyphens, is the repository's name (AsanaBot's rule).
    #[serde(default)]
    pub project_by_repo_name: bool,
    /// GitHub login (no case) -> Asana user (a user gid or an email).
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// What becomes a task: `issues`, `pull_requests` (default both).
    #[serde(default = "default_objects")]
    pub objects: Vec<Object>,
    /// The task name. Placeholders: `{title}`, `{number}`, `{url}`, `{body}`, `{repo}`
    /// (`owner/name`), `{org}`, `{kind}` (`issue` or `pull request`), `{author}`.
    #[serde(default = "default_task_name")]
    pub task_name: String,
    /// The task notes (plain text), with the same placeholders.
    #[serde(default = "default_task_notes")]
    pub task_notes: String,
    /// Create a (completed) task for an item first seen closed. Off by default, as in
    /// AsanaBot: a closed item that never had a task gets none.
    #[serde(default)]
    pub create_closed: bool,
    /// Create tasks for open issues without a mapped assignee (AsanaBot did). Pull requests
    /// always get a task.
    #[serde(default = "yes")]
    pub create_unassigned_issues: bool,
    /// Assign a pull request without a (mapped) assignee to one of its requested reviewers,
    /// in turn.
    #[serde(default = "yes")]
    pub reviewers_round_robin: bool,
}

/// One repository pattern and its project.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectMapping {
    /// An fnmatch pattern on `owner/repo` (`octo-org/*`, `octo-org/api-?`).
    pub repo: String,
    /// The project: its gid (digits), or its name in the owner's workspace.
    pub project: String,
}

/// A kind of GitHub object that becomes a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Object {
    /// Issues (`issues` events).
    Issues,
    /// Pull requests (`pull_request` events).
    PullRequests,
}

fn default_objects() -> Vec<Object> {
    vec![Object::Issues, Object::PullRequests]
}

fn default_task_name() -> String {
    "{title} (#{number})".into()
}

fn default_task_notes() -> String {
    "{url}\n\n{body}".into()
}

fn yes() -> bool {
    true
}

/// Whether a project setting is a gid rather than a name.
pub(crate) fn is_gid(project: &str) -> bool {
    !project.is_empty() && project.bytes().all(|b| b.is_ascii_digit())
}

/// The validated, ready-to-use form of a [`Config`].
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: Config,
    pub(crate) name: Template,
    pub(crate) notes: Template,
    /// `users` with lowercased logins.
    pub(crate) users: BTreeMap<String, String>,
    /// `workspaces` with lowercased logins.
    pub(crate) workspaces: BTreeMap<String, String>,
}

impl Settings {
    /// Checks `config`; the error names the key.
    pub(crate) fn new(config: Config) -> Result<Self, String> {
        let name =
            Template::parse(&config.task_name, FIELDS).map_err(|e| format!("task_name: {e}"))?;
        let notes =
            Template::parse(&config.task_notes, FIELDS).map_err(|e| format!("task_notes: {e}"))?;
        if config.task_name.trim().is_empty() {
            return Err("task_name: must not be empty".into());
        }
        if config.objects.is_empty() {
            return Err("objects: name at least one of `issues`, `pull_requests`".into());
        }
        if config.projects.is_empty() && !config.project_by_repo_name {
            return Err(
                "projects: map at least one repository pattern to a project (or set project_by_repo_name)"
                    .into(),
            );
        }
        for (i, mapping) in config.projects.iter().enumerate() {
            pattern::check(&mapping.repo).map_err(|e| format!("projects[{i}].repo: {e}"))?;
            if mapping.project.trim().is_empty() {
                return Err(format!("projects[{i}].project: must not be empty"));
            }
            if !is_gid(&mapping.project) && config.workspaces.is_empty() {
                return Err(format!(
                    "projects[{i}].project: `{}` is a name, which is looked up in a workspace: set `workspaces`",
                    mapping.project
                ));
            }
        }
        if config.project_by_repo_name && config.workspaces.is_empty() {
            return Err("project_by_repo_name: needs `workspaces` to look projects up in".into());
        }
        for (org, workspace) in &config.workspaces {
            if !is_gid(workspace) {
                return Err(format!(
                    "workspaces.{org}: `{workspace}` is not a workspace gid (digits)"
                ));
            }
        }
        for (login, user) in &config.users {
            if user.trim().is_empty() {
                return Err(format!("users.{login}: must not be empty"));
            }
            if !is_gid(user) && !user.contains('@') {
                return Err(format!(
                    "users.{login}: `{user}` is neither an Asana user gid nor an email"
                ));
            }
        }
        let users = config
            .users
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let workspaces = config
            .workspaces
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        Ok(Self {
            config,
            name,
            notes,
            users,
            workspaces,
        })
    }

    /// The Asana user a GitHub login maps to.
    pub(crate) fn user(&self, login: &str) -> Option<&str> {
        self.users
            .get(&login.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The workspace of a GitHub owner.
    pub(crate) fn workspace(&self, owner: &str) -> Option<&str> {
        self.workspaces
            .get(&owner.to_ascii_lowercase())
            .or_else(|| self.workspaces.get("*"))
            .map(String::as_str)
    }

    /// The first `projects` entry matching `owner/repo`.
    pub(crate) fn project_mapping(&self, full_name: &str) -> Option<(usize, &ProjectMapping)> {
        self.config
            .projects
            .iter()
            .enumerate()
            .find(|(_, m)| pattern::fnmatch(&m.repo, full_name))
    }

    /// Whether events of `full_name` may concern this integration (cheap, for `matches`).
    pub(crate) fn covers(&self, full_name: &str, owner: &str) -> bool {
        self.project_mapping(full_name).is_some()
            || (self.config.project_by_repo_name && self.workspace(owner).is_some())
    }

    /// Whether `object` becomes tasks.
    pub(crate) fn takes(&self, object: Object) -> bool {
        self.config.objects.contains(&object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<Settings, String> {
        let text = format!("asana = \"asana\"\n{extra}");
        let config: Config = toml::from_str(&text).map_err(|e| e.to_string())?;
        Settings::new(config)
    }

    #[test]
    fn defaults_and_lookups() {
        let s = parse(
            r#"
            workspaces = { "Octo-Org" = "1", "*" = "2" }
            projects = [{ repo = "octo-org/octo-repo", project = "10" }, { repo = "octo-org/*", project = "Triage" }]
            users = { OctoCat = "11", monalisa = "mona@example.com" }
            "#,
        )
        .unwrap();
        assert_eq!(s.config.objects, vec![Object::Issues, Object::PullRequests]);
        assert_eq!(s.user("octocat"), Some("11"));
        assert_eq!(s.user("MONALISA"), Some("mona@example.com"));
        assert_eq!(s.user("nobody"), None);
        assert_eq!(s.workspace("octo-org"), Some("1"));
        assert_eq!(s.workspace("elsewhere"), Some("2"));
        assert_eq!(s.project_mapping("octo-org/octo-repo").unwrap().0, 0);
        assert_eq!(
            s.project_mapping("Octo-Org/other").unwrap().1.project,
            "Triage"
        );
        assert!(s.project_mapping("else/where").is_none());
        assert!(s.covers("octo-org/x", "octo-org"));
        assert!(!s.covers("else/where", "else"));
    }

    #[test]
    fn errors_name_the_key() {
        for (extra, key) in [
            ("", "projects"),
            (
                "projects = [{ repo = \"a/*\", project = \"Name\" }]",
                "projects[0].project",
            ),
            (
                "projects = [{ repo = \"a/[\", project = \"1\" }]",
                "projects[0].repo",
            ),
            (
                "projects = [{ repo = \"a/*\", project = \"1\" }]\ntask_name = \"{titel}\"",
                "task_name",
            ),
            (
                "projects = [{ repo = \"a/*\", project = \"1\" }]\ntask_notes = \"{\"",
                "task_notes",
            ),
            (
                "projects = [{ repo = \"a/*\", project = \"1\" }]\nusers = { a = \"ann\" }",
                "users.a",
            ),
            (
                "projects = [{ repo = \"a/*\", project = \"1\" }]\nworkspaces = { a = \"W\" }",
                "workspaces.a",
            ),
            (
                "projects = [{ repo = \"a/*\", project = \"1\" }]\nobjects = []",
                "objects",
            ),
            ("project_by_repo_name = true", "project_by_repo_name"),
        ] {
            let error = parse(extra).unwrap_err();
            assert!(error.starts_with(key), "{extra:?}: {error}");
        }
        assert!(
            parse("projects = []\nbogus = 1")
                .unwrap_err()
                .contains("bogus")
        );
        assert!(
            parse("projects = [{ repo = \"a/*\", project = \"1\" }]\nobjects = [\"commits\"]")
                .is_err()
        );
    }
}
