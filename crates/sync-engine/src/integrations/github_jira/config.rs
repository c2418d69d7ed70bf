//! The settings of a `github-jira` integration as written in configuration, and their
//! checked, compiled form ([`Settings`]).

use std::fmt;

use hookbridge_providers::github::client::Repo;
use serde::Deserialize;

use super::template::{Template, Var};
use crate::integrations::IntegrationError;
use crate::integrations::pattern::fnmatch;

/// The integration's settings (`[[integrations]]` with `kind = "github-jira"`).
///
/// ```
/// use hookbridge_sync_engine::integrations::github_jira::Config;
/// let config: Config = toml::from_str(r#"
///     github = "gh"
///     jira = "jira"
///     endpoint = "github"
///     mappings = [{ repo = "octo-org/*", project = "OPS" }]
/// "#).unwrap();
/// assert_eq!(config.statuses.merged, "Merged");
/// assert_eq!(config.status_labels.prefix, "jira:");
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The GitHub connection (`[connections.<name>]`, `kind = "github"`).
    pub github: String,
    /// The Jira connection (`[connections.<name>]`, `kind = "jira"`).
    pub jira: String,
    /// The GitHub endpoint whose deliveries this integration acts on; the recurring rescan
    /// stores what it finds there.
    pub endpoint: String,
    /// The Jira endpoint whose `jira:issue_updated` deliveries carry status changes to
    /// mirror onto GitHub labels. Unset: Jira events are ignored.
    #[serde(default)]
    pub jira_endpoint: Option<String>,
    /// What is tracked: `pull_requests`, `issues` (default: pull requests only).
    #[serde(default = "default_objects")]
    pub objects: Vec<ObjectKind>,
    /// Repository patterns -> Jira project and issue type; the first match wins.
    pub mappings: Vec<Mapping>,
    /// Create Jira issues only for objects labelled `<prefix><mapping name>`.
    #[serde(default)]
    pub label_gate: Option<LabelGate>,
    /// The Jira status each GitHub state moves the issue to.
    #[serde(default)]
    pub statuses: Statuses,
    /// Mirroring of the Jira status onto a GitHub label.
    #[serde(default)]
    pub status_labels: StatusLabels,
    /// Texts of the issue and of the GitHub comment.
    #[serde(default)]
    pub templates: Templates,
    /// Labels put on created Jira issues (default `["from-GitHub"]`).
    #[serde(default = "default_jira_labels")]
    pub jira_labels: Vec<String>,
    /// A Jira custom field (by name or id, e.g. `GitHub URL`) that receives the object's URL
    /// and identifies its issue. Unset: a Jira label `github:<owner>/<repo>#<n>` does.
    #[serde(default)]
    pub url_field: Option<String>,
    /// The login the bot writes to GitHub as; its own events are skipped. Unset: looked up
    /// through the connection (`GET /user`, or `GET /app` for an app).
    #[serde(default)]
    pub bot_login: Option<String>,
    /// Where people open Jira issues (`<browse_url>/browse/KEY`); default: the connection's
    /// base URL.
    #[serde(default)]
    pub browse_url: Option<String>,
    /// Keep the Jira summary following the GitHub title when it is edited (default true).
    #[serde(default = "yes")]
    pub sync_title: bool,
    /// Seconds between recurring rescans of `rescan_repos` (0, the default: off).
    #[serde(default)]
    pub rescan_interval_secs: u64,
    /// The repositories the recurring rescan visits (`owner/name`).
    #[serde(default)]
    pub rescan_repos: Vec<String>,
}

/// A kind of GitHub object the integration tracks.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// Pull requests.
    PullRequests,
    /// Issues.
    Issues,
}

/// Repositories matching `repo` get issues of `issue_type` in `project`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// An fnmatch pattern over `owner/name` (`*`, `?`, `[seq]`, `[!seq]`), compared
    /// case-insensitively, e.g. `octo-org/*`.
    pub repo: String,
    /// The Jira project key, e.g. `OPS`.
    pub project: String,
    /// The Jira issue type name (default `Task`).
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// The name a gate label selects the mapping by (`jira:<name>`); required with
    /// `label_gate`.
    #[serde(default)]
    pub name: Option<String>,
}

/// Only objects carrying a label `<prefix><mapping name>` get a Jira issue.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelGate {
    /// The gate labels' prefix (default `jira:`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

/// Jira status names by GitHub state. An empty name leaves the status alone in that state.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statuses {
    /// A draft pull request (default `Waiting on Author`).
    #[serde(default = "default_draft")]
    pub draft: String,
    /// Open, or ready for review (default `Needs Triage`).
    #[serde(default = "default_open")]
    pub open: String,
    /// A pull request closed without merging, an issue closed as not planned (default
    /// `Rejected`).
    #[serde(default = "default_closed")]
    pub closed: String,
    /// A merged pull request (default `Merged`).
    #[serde(default = "default_merged")]
    pub merged: String,
    /// An issue closed as completed (default `Done`).
    #[serde(default = "default_done")]
    pub done: String,
}

impl Default for Statuses {
    fn default() -> Self {
        Self {
            draft: default_draft(),
            open: default_open(),
            closed: default_closed(),
            merged: default_merged(),
            done: default_done(),
        }
    }
}

/// The Jira status shown on GitHub as a label `<prefix><status>`. Labels with the prefix
/// are the bot's (except gate labels): it adds and removes them; it never touches others.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusLabels {
    /// Whether the label is kept (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The prefix (default `jira:`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Lowercase the status in the label (default true: `jira:needs triage`).
    #[serde(default = "yes")]
    pub lowercase: bool,
}

impl Default for StatusLabels {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: default_prefix(),
            lowercase: true,
        }
    }
}

/// Texts with placeholders: `{title}`, `{body}`, `{url}`, `{number}`, `{repo}`, `{author}`,
/// `{author_url}`, `{kind}` (`pull request` or `issue`); the comment also `{key}` and
/// `{jira_url}`. `{{` and `}}` write braces.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    /// The Jira summary (default `{title}`).
    #[serde(default = "default_summary")]
    pub summary: String,
    /// The Jira description (default `(From {url} by {author_url})` then the body).
    #[serde(default = "default_description")]
    pub description: String,
    /// The bot's comment on GitHub naming the issue.
    #[serde(default = "default_comment")]
    pub comment: String,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            summary: default_summary(),
            description: default_description(),
            comment: default_comment(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_objects() -> Vec<ObjectKind> {
    vec![ObjectKind::PullRequests]
}
fn default_jira_labels() -> Vec<String> {
    vec!["from-GitHub".into()]
}
fn default_issue_type() -> String {
    "Task".into()
}
fn default_prefix() -> String {
    "jira:".into()
}
fn default_draft() -> String {
    "Waiting on Author".into()
}
fn default_open() -> String {
    "Needs Triage".into()
}
fn default_closed() -> String {
    "Rejected".into()
}
fn default_merged() -> String {
    "Merged".into()
}
fn default_done() -> String {
    "Done".into()
}
fn default_summary() -> String {
    "{title}".into()
}
fn default_description() -> String {
    "(From {url} by {author_url})\n\n{body}".into()
}
fn default_comment() -> String {
    "This {kind} is tracked in Jira as [{key}]({jira_url}).".into()
}

/// Shortest recurring rescan interval: a rescan lists whole repositories.
pub(crate) const MIN_RESCAN_INTERVAL_SECS: u64 = 60;

/// A mapping, checked.
#[derive(Clone, Debug)]
pub(crate) struct CompiledMapping {
    pub(crate) pattern: String,
    pub(crate) project: String,
    pub(crate) issue_type: String,
    pub(crate) name: Option<String>,
}

impl CompiledMapping {
    pub(crate) fn matches(&self, repo: &str) -> bool {
        fnmatch(&self.pattern, repo)
    }
}

/// The checked configuration the integration runs on.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) endpoint: String,
    pub(crate) jira_endpoint: Option<String>,
    pub(crate) pull_requests: bool,
    pub(crate) issues: bool,
    pub(crate) mappings: Vec<CompiledMapping>,
    pub(crate) gate_prefix: Option<String>,
    pub(crate) statuses: Statuses,
    pub(crate) labels: Option<StatusLabels>,
    pub(crate) summary: Template,
    pub(crate) description: Template,
    pub(crate) comment: Template,
    pub(crate) jira_labels: Vec<String>,
    pub(crate) url_field: Option<String>,
    pub(crate) bot_login: Option<String>,
    pub(crate) browse_url: Option<String>,
    pub(crate) sync_title: bool,
    pub(crate) rescan_interval_secs: u64,
    pub(crate) rescan_repos: Vec<Repo>,
}

struct Problems<'a> {
    integration: &'a str,
}

impl Problems<'_> {
    fn error(&self, message: impl fmt::Display) -> IntegrationError {
        IntegrationError::Config {
            integration: self.integration.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Whether `key` looks like a Jira project key (letters first, then letters, digits, `_`).
fn is_project_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 64
}

impl Settings {
    /// Checks `config`, naming the offending key in the error.
    pub(crate) fn compile(integration: &str, config: Config) -> Result<Self, IntegrationError> {
        let p = Problems { integration };
        if config.endpoint.trim().is_empty() {
            return Err(p.error("`endpoint` must name the GitHub endpoint"));
        }
        if config
            .jira_endpoint
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            return Err(p.error("`jira_endpoint` must not be empty when set"));
        }
        if config.objects.is_empty() {
            return Err(p.error("`objects` must list `pull_requests` and/or `issues`"));
        }
        if config.mappings.is_empty() {
            return Err(p.error("`mappings` must have at least one entry"));
        }
        let gate_prefix = match &config.label_gate {
            Some(gate) if gate.prefix.trim().is_empty() => {
                return Err(p.error("`label_gate.prefix` must not be empty"));
            }
            Some(gate) => Some(gate.prefix.clone()),
            None => None,
        };
        let mut mappings = Vec::with_capacity(config.mappings.len());
        for (i, m) in config.mappings.into_iter().enumerate() {
            if m.repo.trim().is_empty() {
                return Err(p.error(format_args!("`mappings[{i}].repo` must not be empty")));
            }
            if !is_project_key(&m.project) {
                return Err(p.error(format_args!(
                    "`mappings[{i}].project` {:?} is not a Jira project key",
                    m.project
                )));
            }
            if m.issue_type.trim().is_empty() {
                return Err(p.error(format_args!("`mappings[{i}].issue_type` must not be empty")));
            }
            if let Some(name) = &m.name
                && (name.trim().is_empty() || name.contains(char::is_whitespace))
            {
                return Err(p.error(format_args!(
                    "`mappings[{i}].name` {name:?} must be a word without spaces"
                )));
            }
            if gate_prefix.is_some() && m.name.is_none() {
                return Err(p.error(format_args!(
                    "`mappings[{i}].name` is required with `label_gate` (the label \
                     selects the mapping by it)"
                )));
            }
            mappings.push(CompiledMapping {
                pattern: m.repo,
                project: m.project,
                issue_type: m.issue_type,
                name: m.name,
            });
        }
        let labels = if config.status_labels.enabled {
            if config.status_labels.prefix.trim().is_empty() {
                return Err(p.error(
                    "`status_labels.prefix` must not be empty: without it every label \
                     would be the bot's",
                ));
            }
            Some(config.status_labels)
        } else {
            None
        };
        // With one prefix for both, `jira:<x>` is a gate label when <x> names a mapping: a
        // configured status with such a name would be both.
        if let (Some(gate), Some(labels)) = (&gate_prefix, &labels)
            && gate.eq_ignore_ascii_case(&labels.prefix)
        {
            let s = &config.statuses;
            for status in [&s.draft, &s.open, &s.closed, &s.merged, &s.done] {
                if let Some(m) = mappings.iter().find(|m| {
                    m.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(status))
                }) {
                    return Err(p.error(format_args!(
                        "mapping name {:?} equals the status {status:?}: with `label_gate.prefix` \
                         equal to `status_labels.prefix` its label would be both a gate and a \
                         status label",
                        m.name.as_deref().unwrap_or_default()
                    )));
                }
            }
        }
        let object_vars = Var::OBJECT;
        let summary = Template::parse(&config.templates.summary, object_vars)
            .map_err(|e| p.error(format_args!("`templates.summary`: {e}")))?;
        if config.templates.summary.trim().is_empty() {
            return Err(p.error("`templates.summary` must not be empty"));
        }
        let description = Template::parse(&config.templates.description, object_vars)
            .map_err(|e| p.error(format_args!("`templates.description`: {e}")))?;
        let comment = Template::parse(&config.templates.comment, Var::ALL)
            .map_err(|e| p.error(format_args!("`templates.comment`: {e}")))?;
        if config.templates.comment.trim().is_empty() {
            return Err(p.error("`templates.comment` must not be empty"));
        }
        if let Some(label) = config
            .jira_labels
            .iter()
            .find(|l| l.is_empty() || l.contains(char::is_whitespace))
        {
            return Err(p.error(format_args!(
                "`jira_labels`: {label:?} is not a Jira label (no spaces)"
            )));
        }
        if config
            .url_field
            .as_deref()
            .is_some_and(|f| f.trim().is_empty())
        {
            return Err(p.error("`url_field` must not be empty when set"));
        }
        if config
            .bot_login
            .as_deref()
            .is_some_and(|l| l.trim().is_empty())
        {
            return Err(p.error("`bot_login` must not be empty when set"));
        }
        if let Some(url) = &config.browse_url
            && reqwest::Url::parse(url).is_err()
        {
            return Err(p.error(format_args!("`browse_url` {url:?} is not a URL")));
        }
        let mut rescan_repos = Vec::with_capacity(config.rescan_repos.len());
        for (i, repo) in config.rescan_repos.iter().enumerate() {
            let parsed: Repo = repo
                .parse()
                .map_err(|e| p.error(format_args!("`rescan_repos[{i}]`: {e}")))?;
            if !mappings.iter().any(|m| m.matches(repo)) {
                return Err(p.error(format_args!(
                    "`rescan_repos[{i}]` {repo:?} matches no mapping"
                )));
            }
            rescan_repos.push(parsed);
        }
        if config.rescan_interval_secs > 0 {
            if config.rescan_interval_secs < MIN_RESCAN_INTERVAL_SECS {
                return Err(p.error(format_args!(
                    "`rescan_interval_secs` must be 0 (off) or at least {MIN_RESCAN_INTERVAL_SECS}"
                )));
            }
            if rescan_repos.is_empty() {
                return Err(p.error("`rescan_interval_secs` needs `rescan_repos` to visit"));
            }
        }
        Ok(Settings {
            endpoint: config.endpoint,
            jira_endpoint: config.jira_endpoint,
            pull_requests: config.objects.contains(&ObjectKind::PullRequests),
            issues: config.objects.contains(&ObjectKind::Issues),
            mappings,
            gate_prefix,
            statuses: config.statuses,
            labels,
            summary,
            description,
            comment,
            jira_labels: config.jira_labels,
            url_field: config.url_field,
            bot_login: config.bot_login,
            browse_url: config.browse_url,
            sync_title: config.sync_title,
            rescan_interval_secs: config.rescan_interval_secs,
            rescan_repos,
        })
    }

    /// Whether some mapping covers `repo` (`owner/name`).
    pub(crate) fn covers(&self, repo: &str) -> bool {
        self.mappings.iter().any(|m| m.matches(repo))
    }

    /// The mapping name a gate label selects, if `label` is one.
    pub(crate) fn gate_name<'a>(&self, label: &'a str) -> Option<&'a str> {
        let prefix = self.gate_prefix.as_deref()?;
        let rest = strip_prefix_ci(label, prefix)?;
        self.mappings
            .iter()
            .any(|m| {
                m.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(rest))
            })
            .then_some(rest)
    }

    /// Whether the bot owns `label`: it has the status prefix and is not a gate label.
    pub(crate) fn owns_label(&self, label: &str) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| strip_prefix_ci(label, &l.prefix).is_some())
            && self.gate_name(label).is_none()
    }

    /// The label showing Jira status `status`.
    pub(crate) fn status_label(&self, status: &str) -> Option<String> {
        let labels = self.labels.as_ref()?;
        let status = if labels.lowercase {
            status.to_lowercase()
        } else {
            status.to_owned()
        };
        Some(format!("{}{status}", labels.prefix))
    }
}

/// `text` without `prefix`, compared ASCII case-insensitively.
pub(crate) fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        toml::from_str(&format!(
            "github = \"gh\"\njira = \"jira\"\nendpoint = \"github\"\n{extra}"
        ))
        .unwrap()
    }

    fn compile(extra: &str) -> Result<Settings, String> {
        Settings::compile("gh-jira", config(extra)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_label_ownership() {
        let s = compile(
            r#"mappings = [{ repo = "o/*", project = "OPS", name = "ops" }]
               label_gate = {}"#,
        )
        .unwrap();
        assert!(s.pull_requests && !s.issues);
        assert_eq!(s.mappings[0].issue_type, "Task");
        assert_eq!(s.status_label("Needs Triage").unwrap(), "jira:needs triage");
        assert!(s.owns_label("jira:needs triage"));
        assert!(s.owns_label("JIRA:merged"));
        assert!(
            !s.owns_label("jira:ops"),
            "a gate label is not a status label"
        );
        assert_eq!(s.gate_name("Jira:OPS"), Some("OPS"));
        assert!(!s.owns_label("bug"));
        assert!(s.covers("o/x") && !s.covers("p/x"));
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (extra, key) in [
            ("mappings = []", "`mappings`"),
            (
                r#"mappings = [{ repo = "o/*", project = "not a key" }]"#,
                "`mappings[0].project`",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   label_gate = {}"#,
                "`mappings[0].name`",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS", name = "merged" }]
                   label_gate = {}"#,
                "equals the status",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   templates = { summary = "{nope}" }"#,
                "`templates.summary`",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   templates = { description = "{key}" }"#,
                "`templates.description`",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   status_labels = { prefix = "" }"#,
                "`status_labels.prefix`",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   rescan_interval_secs = 3600"#,
                "`rescan_repos`",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   rescan_interval_secs = 5
                   rescan_repos = ["o/a"]"#,
                "`rescan_interval_secs`",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   rescan_repos = ["p/a"]"#,
                "matches no mapping",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   objects = []"#,
                "`objects`",
            ),
            (
                r#"mappings = [{ repo = "o/*", project = "OPS" }]
                   jira_labels = ["two words"]"#,
                "`jira_labels`",
            ),
        ] {
            let error = compile(extra).expect_err(extra);
            assert!(error.contains(key), "{error} should name {key}");
            assert!(error.contains("gh-jira"), "{error}");
        }
        // Unknown keys are refused by serde.
        assert!(
            toml::from_str::<Config>(
                "github = \"gh\"\njira = \"j\"\nendpoint = \"e\"\nmappings = []\ntypo = 1"
            )
            .is_err()
        );
    }
}
