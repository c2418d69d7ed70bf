//! The integration's settings, their defaults, and their validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The settings of a `pagerduty-jira` integration (`[[integrations]]` with
/// `kind = "pagerduty-jira"`). Every key but `pagerduty`, `jira` and `project` has a default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The PagerDuty connection (`[connections.<name>]`, `kind = "pagerduty"`) incidents are
    /// read and updated through. Its `from` email is sent with every write.
    pub pagerduty: String,
    /// The Jira connection issues are created and updated through.
    pub jira: String,
    /// The endpoint PagerDuty's webhooks arrive on; the log-entries poller stores what it
    /// finds there too. Default `pagerduty`.
    #[serde(default = "default_pagerduty_endpoint")]
    pub pagerduty_endpoint: String,
    /// The endpoint Jira's webhooks arrive on. Default `jira`.
    #[serde(default = "default_jira_endpoint")]
    pub jira_endpoint: String,
    /// The PagerDuty priorities (by name) whose incidents get a Jira issue. Default `["P1"]`.
    #[serde(default = "default_create_priorities")]
    pub create_priorities: Vec<String>,
    /// The Jira project issues are created in (key, e.g. `INC`).
    pub project: String,
    /// The issue type of created issues. Default `Incident`.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// Labels added to every issue the integration creates, besides its marker labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The prefix of the marker labels that find an incident's issues again
    /// (`<prefix><incident id>`). Default `pagerduty-`.
    #[serde(default = "default_marker_prefix")]
    pub marker_label_prefix: String,
    /// PagerDuty priority name -> Jira priority name. Default `P1` -> `Highest`, `P2` ->
    /// `High`, `P3` -> `Medium`, `P4` -> `Low`, `P5` -> `Lowest`.
    #[serde(default = "default_priority_map")]
    pub priority_map: BTreeMap<String, String>,
    /// Jira priority name -> PagerDuty priority name, for changes made in Jira. Entries here
    /// win; the others are the reverse of `priority_map` (a Jira priority several PagerDuty
    /// priorities map to is left out of the reverse).
    #[serde(default)]
    pub jira_priority_map: BTreeMap<String, String>,
    /// PagerDuty status -> Jira status.
    #[serde(default)]
    pub status_map: StatusMap,
    /// Jira statuses (by name) that resolve the incident when an issue is moved to them.
    /// Default: the `status_map.resolved` status.
    #[serde(default)]
    pub resolve_statuses: Vec<String>,
    /// Whether a resolution being set on the issue (from none) resolves the incident too.
    /// Default true.
    #[serde(default = "yes")]
    pub resolve_on_resolution: bool,
    /// A custom field set from the incident's priority (the original's `Severity`).
    #[serde(default)]
    pub severity: Option<Box<SeverityConfig>>,
    /// Linking the issue to the record issue of the incident's assignee.
    #[serde(default)]
    pub record: Option<Box<RecordConfig>>,
    /// Issues every incident issue is linked to.
    #[serde(default)]
    pub stakeholders: Option<Box<StakeholdersConfig>>,
    /// Checklist issues created with every incident issue, one per question.
    #[serde(default)]
    pub checklist: Option<Box<ChecklistConfig>>,
    /// A timeline issue per new log entry of a mirrored incident.
    #[serde(default)]
    pub timeline: Option<Box<TimelineConfig>>,
    /// The log-entries poller.
    #[serde(default)]
    pub log_entries: LogEntriesConfig,
}

/// PagerDuty status -> the Jira status the issue is moved to (found by the target status's
/// name). An empty name maps to nothing.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusMap {
    /// For `triggered` (an incident reopened or unacknowledged). Default: none.
    #[serde(default)]
    pub triggered: String,
    /// For `acknowledged`. Default `In Progress`.
    #[serde(default = "default_acknowledged")]
    pub acknowledged: String,
    /// For `resolved`. Default `Done`.
    #[serde(default = "default_resolved")]
    pub resolved: String,
}

impl Default for StatusMap {
    fn default() -> Self {
        Self {
            triggered: String::new(),
            acknowledged: default_acknowledged(),
            resolved: default_resolved(),
        }
    }
}

/// How a severity custom field is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeverityFormat {
    /// A select list: `{"value": "SEV-0"}`.
    #[default]
    Option,
    /// A text field: `"SEV-0"`.
    Text,
}

/// A custom field set from the incident's priority.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityConfig {
    /// The field's name as Jira shows it (or its id). Default `Severity`.
    #[serde(default = "default_severity_field")]
    pub field: String,
    /// PagerDuty priority name -> the field's value. Default `P1` -> `SEV-0`.
    #[serde(default = "default_severity_values")]
    pub values: BTreeMap<String, String>,
    /// `option` (a select list, the default) or `text`.
    #[serde(default)]
    pub format: SeverityFormat,
}

/// Linking an incident's issue to its assignee's record issue (the original's "incident
/// manager" person issue).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// The project of the record issues.
    pub project: String,
    /// The JQL that finds a user's record issue, with `{project}`, `{name}`, `{email}` and
    /// `{id}` (the PagerDuty user's) replaced, escaped for a JQL string. Default
    /// `project = "{project}" AND summary ~ "{name}"`.
    #[serde(default = "default_record_jql")]
    pub jql: String,
    /// The link type. Default `Incident Manager`.
    #[serde(default = "default_record_link_type")]
    pub link_type: String,
}

/// Issues every incident issue is linked to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakeholdersConfig {
    /// Their keys.
    pub issues: Vec<String>,
    /// The link type. Default `Stakeholder`.
    #[serde(default = "default_stakeholder_link_type")]
    pub link_type: String,
}

/// Checklist issues created with every incident issue: sub-tasks of it, or issues linked to
/// it when `link_type` is set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistConfig {
    /// A file of questions: one per line (blank lines and `#` comments skipped), a TOML
    /// document with `questions = [...]`, or a JSON list; items are strings or
    /// `{summary, description}` tables. A relative path is relative to the working directory.
    #[serde(default)]
    pub questions_file: Option<PathBuf>,
    /// Questions given inline (after those of the file).
    #[serde(default)]
    pub questions: Vec<Question>,
    /// The project of the checklist issues. Default: the incident issue's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Their issue type. Default `Sub-task`.
    #[serde(default = "default_checklist_issue_type")]
    pub issue_type: String,
    /// Link each to the incident issue with this link type (e.g. `Question`) instead of
    /// creating sub-tasks.
    #[serde(default)]
    pub link_type: Option<String>,
}

/// One checklist question.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Question {
    /// Just a summary.
    Summary(String),
    /// A summary and a description.
    Full {
        /// The issue's summary.
        summary: String,
        /// The issue's description.
        #[serde(default)]
        description: Option<String>,
    },
}

impl Question {
    /// The issue summary.
    pub fn summary(&self) -> &str {
        match self {
            Question::Summary(s) => s,
            Question::Full { summary, .. } => summary,
        }
    }

    /// The issue description, if any.
    pub fn description(&self) -> Option<&str> {
        match self {
            Question::Summary(_) => None,
            Question::Full { description, .. } => description.as_deref(),
        }
    }
}

/// A timeline issue per new log entry of a mirrored incident (needs the poller).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineConfig {
    /// The project of the timeline issues.
    pub project: String,
    /// Their issue type. Default `Task`.
    #[serde(default = "default_timeline_issue_type")]
    pub issue_type: String,
    /// The link type to the incident issue. Default `Timeline`.
    #[serde(default = "default_timeline_link_type")]
    pub link_type: String,
}

/// The log-entries poller (`GET /log_entries`): it sees what PagerDuty sends no webhook for
/// (a priority raised after the incident was triggered, with V2 webhooks), and what a lost
/// webhook did not deliver.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntriesConfig {
    /// Whether it runs. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds between polls. Default 60.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// How far back the first poll reads, in seconds. Default 3600.
    #[serde(default = "default_lookback")]
    pub initial_lookback_secs: u64,
    /// How far before the cursor each poll starts again, in seconds, for entries PagerDuty
    /// lists late; the entries read twice are recognised and skipped. Default 120.
    #[serde(default = "default_overlap")]
    pub overlap_secs: u64,
    /// The longest window one poll reads, in seconds (PagerDuty refuses to page past 10 000
    /// entries); a poller behind catches up window by window. Default 3600.
    #[serde(default = "default_max_window")]
    pub max_window_secs: u64,
    /// Log entry types not turned into events. Default `["notify_log_entry"]`.
    #[serde(default = "default_skip_types")]
    pub skip_types: Vec<String>,
}

impl Default for LogEntriesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: default_interval(),
            initial_lookback_secs: default_lookback(),
            overlap_secs: default_overlap(),
            max_window_secs: default_max_window(),
            skip_types: default_skip_types(),
        }
    }
}

impl LogEntriesConfig {
    /// Time between polls.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs)
    }
}

fn yes() -> bool {
    true
}
fn default_pagerduty_endpoint() -> String {
    "pagerduty".into()
}
fn default_jira_endpoint() -> String {
    "jira".into()
}
fn default_create_priorities() -> Vec<String> {
    vec!["P1".into()]
}
fn default_issue_type() -> String {
    "Incident".into()
}
fn default_marker_prefix() -> String {
    "pagerduty-".into()
}
fn default_priority_map() -> BTreeMap<String, String> {
    [
        ("P1", "Highest"),
        ("P2", "High"),
        ("P3", "Medium"),
        ("P4", "Low"),
        ("P5", "Lowest"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect()
}
fn default_acknowledged() -> String {
    "In Progress".into()
}
fn default_resolved() -> String {
    "Done".into()
}
fn default_severity_field() -> String {
    "Severity".into()
}
fn default_severity_values() -> BTreeMap<String, String> {
    BTreeMap::from([("P1".to_owned(), "SEV-0".to_owned())])
}
fn default_record_jql() -> String {
    r#"project = "{project}" AND summary ~ "{name}""#.into()
}
fn default_record_link_type() -> String {
    "Incident Manager".into()
}
fn default_stakeholder_link_type() -> String {
    "Stakeholder".into()
}
fn default_checklist_issue_type() -> String {
    "Sub-task".into()
}
fn default_timeline_issue_type() -> String {
    "Task".into()
}
fn default_timeline_link_type() -> String {
    "Timeline".into()
}
fn default_interval() -> u64 {
    60
}
fn default_lookback() -> u64 {
    3600
}
fn default_overlap() -> u64 {
    120
}
fn default_max_window() -> u64 {
    3600
}
fn default_skip_types() -> Vec<String> {
    vec!["notify_log_entry".into()]
}

/// The settings after validation, with what they imply computed once: the reverse priority
/// map, the resolving statuses, the questions.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The settings as given.
    pub config: Config,
    /// Jira priority (lower case) -> PagerDuty priority.
    pub jira_to_pd_priority: BTreeMap<String, String>,
    /// Jira statuses (lower case) that resolve the incident.
    pub resolve_statuses: Vec<String>,
    /// The checklist's questions, file first.
    pub questions: Vec<Question>,
}

/// Checks `config`; the message names the key at fault.
pub(crate) fn validate(config: Config) -> Result<Settings, String> {
    let non_empty = |key: &str, value: &str| {
        if value.trim().is_empty() {
            Err(format!("`{key}` must not be empty"))
        } else {
            Ok(())
        }
    };
    non_empty("pagerduty", &config.pagerduty)?;
    non_empty("jira", &config.jira)?;
    non_empty("pagerduty_endpoint", &config.pagerduty_endpoint)?;
    non_empty("jira_endpoint", &config.jira_endpoint)?;
    non_empty("project", &config.project)?;
    non_empty("issue_type", &config.issue_type)?;
    if config.create_priorities.iter().any(|p| p.trim().is_empty()) {
        return Err("`create_priorities` must not contain an empty name".into());
    }
    // Labels are single words in Jira, and the marker is searched for with `labels = "..."`.
    let is_label = |l: &str| !l.is_empty() && !l.chars().any(|c| c.is_whitespace() || c == '"');
    if let Some(bad) = config.labels.iter().find(|l| !is_label(l)) {
        return Err(format!(
            "`labels`: {bad:?} is not a Jira label (no spaces or quotes)"
        ));
    }
    if !is_label(&config.marker_label_prefix) {
        return Err(
            "`marker_label_prefix` must be a non-empty label prefix (no spaces or quotes)".into(),
        );
    }
    for (pd, jira) in &config.priority_map {
        non_empty(&format!("priority_map.{pd}"), jira)?;
    }
    for (jira, pd) in &config.jira_priority_map {
        non_empty(&format!("jira_priority_map.{jira}"), pd)?;
    }
    // The reverse map: a Jira priority that several PagerDuty priorities map to is ambiguous
    // and left out unless `jira_priority_map` names it.
    let mut reverse: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (pd, jira) in &config.priority_map {
        reverse
            .entry(jira.to_lowercase())
            .and_modify(|v| *v = None)
            .or_insert_with(|| Some(pd.clone()));
    }
    let mut jira_to_pd_priority: BTreeMap<String, String> = reverse
        .into_iter()
        .filter_map(|(jira, pd)| pd.map(|pd| (jira, pd)))
        .collect();
    for (jira, pd) in &config.jira_priority_map {
        jira_to_pd_priority.insert(jira.to_lowercase(), pd.clone());
    }
    let mut resolve_statuses: Vec<String> = config
        .resolve_statuses
        .iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if config.resolve_statuses.is_empty() && !config.status_map.resolved.trim().is_empty() {
        resolve_statuses.push(config.status_map.resolved.trim().to_lowercase());
    }
    if let Some(severity) = &config.severity {
        non_empty("severity.field", &severity.field)?;
    }
    if let Some(record) = &config.record {
        non_empty("record.project", &record.project)?;
        non_empty("record.link_type", &record.link_type)?;
        if !["{name}", "{email}", "{id}"]
            .iter()
            .any(|p| record.jql.contains(p))
        {
            return Err("`record.jql` must use `{name}`, `{email}` or `{id}`".into());
        }
    }
    if let Some(stakeholders) = &config.stakeholders {
        non_empty("stakeholders.link_type", &stakeholders.link_type)?;
        if let Some(bad) = stakeholders.issues.iter().find(|k| !is_issue_key(k)) {
            return Err(format!(
                "`stakeholders.issues`: {bad:?} is not an issue key"
            ));
        }
    }
    let mut questions = Vec::new();
    if let Some(checklist) = &config.checklist {
        non_empty("checklist.issue_type", &checklist.issue_type)?;
        if let Some(link_type) = &checklist.link_type {
            non_empty("checklist.link_type", link_type)?;
        } else if checklist
            .project
            .as_deref()
            .is_some_and(|p| !p.eq_ignore_ascii_case(&config.project))
        {
            return Err(
                "`checklist.project`: sub-tasks live in their parent's project; set `checklist.link_type` to create linked issues in another project"
                    .into(),
            );
        }
        if let Some(path) = &checklist.questions_file {
            questions = read_questions(path)?;
        }
        questions.extend(checklist.questions.iter().cloned());
        if let Some(bad) = questions.iter().find(|q| q.summary().trim().is_empty()) {
            return Err(format!(
                "`checklist`: a question has an empty summary ({bad:?})"
            ));
        }
        if questions.is_empty() {
            return Err("`checklist`: no questions (set `questions_file` or `questions`)".into());
        }
    }
    if let Some(timeline) = &config.timeline {
        non_empty("timeline.project", &timeline.project)?;
        non_empty("timeline.issue_type", &timeline.issue_type)?;
        non_empty("timeline.link_type", &timeline.link_type)?;
        if !config.log_entries.enabled {
            return Err("`timeline` needs the log-entries poller (`log_entries.enabled`)".into());
        }
    }
    let polls = &config.log_entries;
    if polls.interval_secs == 0 {
        return Err("`log_entries.interval_secs` must be greater than 0".into());
    }
    if polls.max_window_secs < 60 {
        return Err("`log_entries.max_window_secs` must be at least 60".into());
    }
    if polls.overlap_secs >= polls.max_window_secs {
        return Err("`log_entries.overlap_secs` must be less than `max_window_secs`".into());
    }
    Ok(Settings {
        config,
        jira_to_pd_priority,
        resolve_statuses,
        questions,
    })
}

fn is_issue_key(key: &str) -> bool {
    match key.split_once('-') {
        Some((project, number)) => {
            !project.is_empty()
                && project
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Reads a questions file: a JSON list, a TOML document with `questions = [...]`, or one
/// question per line.
pub(crate) fn read_questions(path: &Path) -> Result<Vec<Question>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("`checklist.questions_file` {}: {e}", path.display()))?;
    parse_questions(&text)
        .map_err(|e| format!("`checklist.questions_file` {}: {e}", path.display()))
}

/// Parses the text of a questions file (see [`ChecklistConfig::questions_file`]).
pub(crate) fn parse_questions(text: &str) -> Result<Vec<Question>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).map_err(|e| format!("not a JSON list: {e}"));
    }
    // A TOML document has an assignment on its first significant line; a plain question
    // rarely starts with `questions =`.
    let first = trimmed
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_default();
    if first.starts_with("questions") && first.contains('=') {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            questions: Vec<Question>,
        }
        let file: File =
            toml::from_str(text).map_err(|e| format!("not valid TOML: {}", e.message()))?;
        return Ok(file.questions);
    }
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Question::Summary(l.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({"pagerduty": "pd", "jira": "jira", "project": "INC"})
    }

    fn config(extra: serde_json::Value) -> Result<Settings, String> {
        let mut value = minimal();
        for (k, v) in extra.as_object().unwrap() {
            value[k] = v.clone();
        }
        let config: Config = serde_json::from_value(value).map_err(|e| e.to_string())?;
        validate(config)
    }

    #[test]
    fn defaults() {
        let s = config(serde_json::json!({})).unwrap();
        let c = &s.config;
        assert_eq!(c.create_priorities, ["P1"]);
        assert_eq!(c.issue_type, "Incident");
        assert_eq!(c.pagerduty_endpoint, "pagerduty");
        assert_eq!(c.priority_map["P1"], "Highest");
        assert_eq!(c.status_map.acknowledged, "In Progress");
        assert_eq!(c.status_map.resolved, "Done");
        assert_eq!(c.status_map.triggered, "");
        assert_eq!(s.resolve_statuses, ["done"]);
        assert_eq!(s.jira_to_pd_priority["highest"], "P1");
        assert_eq!(c.log_entries.interval_secs, 60);
        assert!(c.log_entries.enabled);
        assert!(c.resolve_on_resolution);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_naming_the_key() {
        let err = config(serde_json::json!({"projekt": "X"})).unwrap_err();
        assert!(err.contains("projekt"), "{err}");
        let err = config(serde_json::json!({"project": " "})).unwrap_err();
        assert!(err.contains("`project`"), "{err}");
        let err = config(serde_json::json!({"record": {"project": "P", "jql": "project = P"}}))
            .unwrap_err();
        assert!(err.contains("record.jql"), "{err}");
        let err = config(serde_json::json!({"stakeholders": {"issues": ["nope"]}})).unwrap_err();
        assert!(err.contains("stakeholders.issues"), "{err}");
        let err = config(serde_json::json!({"log_entries": {"interval_secs": 0}})).unwrap_err();
        assert!(err.contains("interval_secs"), "{err}");
        let err = config(serde_json::json!({"checklist": {"project": "Q"}})).unwrap_err();
        assert!(err.contains("checklist"), "{err}");
        let err = config(serde_json::json!({"labels": ["two words"]})).unwrap_err();
        assert!(err.contains("labels"), "{err}");
        let err = config(serde_json::json!({
            "timeline": {"project": "T"}, "log_entries": {"enabled": false}
        }))
        .unwrap_err();
        assert!(err.contains("timeline"), "{err}");
    }

    #[test]
    fn ambiguous_reverse_priorities_are_left_out_unless_named() {
        let s = config(serde_json::json!({
            "priority_map": {"P1": "Highest", "P4": "Low", "P5": "Low"}
        }))
        .unwrap();
        assert_eq!(s.jira_to_pd_priority.get("low"), None);
        assert_eq!(s.jira_to_pd_priority["highest"], "P1");
        let s = config(serde_json::json!({
            "priority_map": {"P4": "Low", "P5": "Low"},
            "jira_priority_map": {"Low": "P4"}
        }))
        .unwrap();
        assert_eq!(s.jira_to_pd_priority["low"], "P4");
    }

    #[test]
    fn question_files_in_three_formats() {
        let lines = parse_questions("# checklist\nWhat broke?\n\n  Who was paged?  \n").unwrap();
        assert_eq!(
            lines,
            [
                Question::Summary("What broke?".into()),
                Question::Summary("Who was paged?".into())
            ]
        );
        let toml = parse_questions(
            "# checklist\nquestions = [\"What broke?\", { summary = \"Impact?\", description = \"Users affected\" }]\n",
        )
        .unwrap();
        assert_eq!(toml.len(), 2);
        assert_eq!(toml[1].summary(), "Impact?");
        assert_eq!(toml[1].description(), Some("Users affected"));
        let json = parse_questions(
            r#"[{"summary": "Root cause?", "description": "5 whys"}, "Follow-ups?"]"#,
        )
        .unwrap();
        assert_eq!(json[0].description(), Some("5 whys"));
        assert_eq!(json[1].summary(), "Follow-ups?");
        assert!(parse_questions("questions = [1, 2]").is_err());
        assert!(parse_questions("[1, 2]").is_err());
    }

    #[test]
    fn a_questions_file_is_read_at_validation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("questions.txt");
        std::fs::write(&path, "What broke?\n").unwrap();
        let s = config(serde_json::json!({
            "checklist": {"questions_file": path, "questions": ["Inline?"]}
        }))
        .unwrap();
        assert_eq!(s.questions.len(), 2);
        let err = config(serde_json::json!({
            "checklist": {"questions_file": dir.path().join("missing.txt")}
        }))
        .unwrap_err();
        assert!(err.contains("questions_file"), "{err}");
        let err = config(serde_json::json!({"checklist": {}})).unwrap_err();
        assert!(err.contains("no questions"), "{err}");
    }
}
