//! Rules written in the configuration file instead of Rust: route events that match a
//! provider, an endpoint, event-name patterns and field values to an action whose fields are
//! templates, with value maps such as priority `P1 -> Highest`.
//!
//! ```toml
//! [[rules]]
//! name = "p1-to-slack"
//! action = { kind = "slack", webhook_url = { env = "SLACK_WEBHOOK_URL" }, text = "{{ /event/data/title }} is {{ /event/data/priority/summary | map:severity }}" }
//!
//! [rules.when]
//! provider = "pagerduty"
//! event = ["incident.triggered", "incident.priority_updated"]
//! fields = { "/event/data/priority/summary" = "P1" }
//!
//! [rules.maps]
//! severity = { P1 = "critical", P2 = "major" }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use hookbridge_core::{Event, RuleError, RuleOutcome, SyncRule};
use serde::Deserialize;

use super::RuleContext;

/// A rule as written in the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The rule's name, unique among rules.
    pub name: String,
    /// Which events it takes (all, if empty).
    #[serde(default)]
    pub when: When,
    /// What it does.
    pub action: ActionSpec,
    /// Value maps used by templates' `map:NAME` filter.
    #[serde(default)]
    pub maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// Conditions, all of which must hold.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// The provider kind, e.g. `pagerduty`.
    pub provider: Option<String>,
    /// The endpoint the delivery arrived on.
    pub endpoint: Option<String>,
    /// Event-name patterns (`*` matches any run of characters), any of which may match.
    #[serde(default, deserialize_with = "one_or_many")]
    pub event: Vec<String>,
    /// Fields of the JSON document (JSON pointers) and the values they must have (any of
    /// a list).
    #[serde(default)]
    pub fields: BTreeMap<String, OneOrMany>,
}

/// One value or a list of accepted values.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// Exactly this value.
    One(Scalar),
    /// Any of these values.
    Many(Vec<Scalar>),
}

/// A scalar from the config, compared with JSON values by its text.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A string.
    Text(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(s) => vec![s],
        Either::Many(v) => v,
    })
}

/// What a declarative rule does.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ActionSpec {
    /// An HTTP request with a templated body (JSON by default).
    Http {
        /// The URL (a template).
        url: String,
        /// The method, `POST` by default.
        #[serde(default = "default_method")]
        method: String,
        /// Extra headers (values are templates).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// The body template. Substituted values are escaped for JSON strings unless the
        /// `content-type` header says otherwise.
        body: Option<String>,
        /// The rate-limit target (default: the URL's host).
        target: Option<String>,
    },
    /// A message to a Slack incoming webhook.
    Slack {
        /// The incoming webhook's URL (a secret: prefer `{ env = "..." }`).
        webhook_url: String,
        /// The message text (a template).
        text: String,
    },
}

fn default_method() -> String {
    "POST".into()
}

/// Why a rule spec is invalid.
#[derive(Debug, thiserror::Error)]
#[error("rule {rule:?}: {message}")]
pub struct RuleSpecError {
    /// The rule.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

/// A rule built from a [`RuleSpec`].
pub struct DeclarativeRule {
    spec: RuleSpec,
    http: reqwest::Client,
}

impl std::fmt::Debug for DeclarativeRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The action may carry secret URLs: only the name and kind are shown.
        let kind = match self.spec.action {
            ActionSpec::Http { .. } => "http",
            ActionSpec::Slack { .. } => "slack",
        };
        f.debug_struct("DeclarativeRule")
            .field("name", &self.spec.name)
            .field("action", &kind)
            .finish()
    }
}

impl DeclarativeRule {
    /// Checks the spec (templates, maps, method) and builds the rule.
    pub fn new(spec: RuleSpec, http: reqwest::Client) -> Result<Self, RuleSpecError> {
        let fail = |message: String| RuleSpecError {
            rule: spec.name.clone(),
            message,
        };
        if spec.name.trim().is_empty() {
            return Err(fail("the name is empty".into()));
        }
        let templates: Vec<&str> = match &spec.action {
            ActionSpec::Http {
                url,
                method,
                headers,
                body,
                ..
            } => {
                reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|_| fail(format!("invalid method {method:?}")))?;
                let mut t = vec![url.as_str()];
                t.extend(headers.values().map(String::as_str));
                t.extend(body.as_deref());
                t
            }
            ActionSpec::Slack { webhook_url, text } => vec![webhook_url.as_str(), text.as_str()],
        };
        for template in templates {
            for expr in expressions(template).map_err(&fail)? {
                check_expression(expr, &spec.maps).map_err(&fail)?;
            }
        }
        Ok(Self { spec, http })
    }
}

/// The `{{ ... }}` expressions of a template.
fn expressions(template: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in template {template:?}"))?;
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    Ok(out)
}

fn check_expression(
    expr: &str,
    maps: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<(), String> {
    let mut parts = expr.split('|').map(str::trim);
    let path = parts.next().unwrap_or_default();
    if !(path.starts_with('/') || EVENT_FIELDS.contains(&path)) {
        return Err(format!(
            "{{{{ {expr} }}}}: a value is a JSON pointer (/a/b) or one of {}",
            EVENT_FIELDS.join(", ")
        ));
    }
    for filter in parts {
        match filter.split_once(':') {
            Some(("map", name)) if maps.contains_key(name.trim()) => {}
            Some(("map", name)) => return Err(format!("{{{{ {expr} }}}}: no map named {name:?}")),
            Some(("default", _)) => {}
            _ if filter == "json" => {}
            _ => {
                return Err(format!(
                    "{{{{ {expr} }}}}: unknown filter {filter:?} (map:NAME, default:TEXT, json)"
                ));
            }
        }
    }
    Ok(())
}

const EVENT_FIELDS: &[&str] = &[
    "event.name",
    "event.provider",
    "event.subject",
    "event.delivery_id",
    "event.actor",
];

/// Renders templates against one event.
struct Renderer<'a> {
    event: &'a Event,
    json: Option<serde_json::Value>,
    maps: &'a BTreeMap<String, BTreeMap<String, String>>,
}

impl<'a> Renderer<'a> {
    fn new(event: &'a Event, maps: &'a BTreeMap<String, BTreeMap<String, String>>) -> Self {
        let json = event
            .raw_json()
            .and_then(|raw| serde_json::from_slice(raw).ok());
        Self { event, json, maps }
    }

    fn lookup(&self, path: &str) -> Option<serde_json::Value> {
        use serde_json::Value;
        let text = |s: Option<String>| s.map(Value::String);
        match path {
            "event.name" => text(Some(self.event.name().to_string())),
            "event.provider" => text(Some(self.event.provider().to_string())),
            "event.subject" => text(self.event.subject().map(ToString::to_string)),
            "event.delivery_id" => text(Some(self.event.delivery_id().to_string())),
            "event.actor" => text(self.event.actor().map(|a| a.name.clone())),
            pointer => self.json.as_ref()?.pointer(pointer).cloned(),
        }
    }

    fn value(&self, expr: &str) -> (String, bool) {
        let mut parts = expr.split('|').map(str::trim);
        let mut value = parts.next().and_then(|p| self.lookup(p));
        let mut as_json = false;
        for filter in parts {
            match filter.split_once(':') {
                Some(("map", name)) => {
                    let mapped = value
                        .as_ref()
                        .map(scalar_text)
                        .and_then(|key| self.maps.get(name.trim())?.get(&key).cloned());
                    if let Some(mapped) = mapped {
                        value = Some(serde_json::Value::String(mapped));
                    }
                }
                Some(("default", text)) if value.as_ref().is_none_or(|v| v.is_null()) => {
                    value = Some(serde_json::Value::String(text.trim().to_owned()));
                }
                _ if filter == "json" => as_json = true,
                _ => {}
            }
        }
        match value {
            Some(v) if as_json => (v.to_string(), true),
            Some(v) => (scalar_text(&v), false),
            None => (String::new(), false),
        }
    }

    /// Renders `template`; with `json_strings`, substituted text is escaped for the inside of
    /// a JSON string (values rendered with `| json` are inserted as JSON).
    fn render(&self, template: &str, json_strings: bool) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            let (text, is_json) = self.value(after[..end].trim());
            if json_strings && !is_json {
                let quoted = serde_json::Value::String(text).to_string();
                out.push_str(&quoted[1..quoted.len() - 1]);
            } else {
                out.push_str(&text);
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = rest.split('*').collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i == pieces.len() - 1 {
            return remaining.ends_with(piece);
        }
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[async_trait]
impl SyncRule<RuleContext> for DeclarativeRule {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn matches(&self, event: &Event) -> bool {
        let when = &self.spec.when;
        if when
            .provider
            .as_deref()
            .is_some_and(|p| p != event.provider().as_str())
        {
            return false;
        }
        if !when.event.is_empty() && !when.event.iter().any(|p| glob(p, event.name().as_str())) {
            return false;
        }
        if when.fields.is_empty() {
            return true;
        }
        let renderer = Renderer::new(event, &self.spec.maps);
        when.fields.iter().all(|(pointer, expected)| {
            let Some(actual) = renderer.lookup(pointer).map(|v| scalar_text(&v)) else {
                return false;
            };
            match expected {
                OneOrMany::One(v) => v.text() == actual,
                OneOrMany::Many(vs) => vs.iter().any(|v| v.text() == actual),
            }
        })
    }

    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        let renderer = Renderer::new(event, &self.spec.maps);
        let (request, target, description) = match &self.spec.action {
            ActionSpec::Http {
                url,
                method,
                headers,
                body,
                target,
            } => {
                let url = renderer.render(url, false);
                let parsed = reqwest::Url::parse(&url).map_err(|e| RuleError::Permanent {
                    message: format!("the rendered URL is invalid: {e}"),
                })?;
                let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| {
                    RuleError::Permanent {
                        message: format!("invalid method {method:?}"),
                    }
                })?;
                let json_body = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .is_none_or(|(_, v)| v.contains("json"));
                let mut request = self.http.request(method.clone(), parsed.clone());
                if json_body {
                    request = request.header("content-type", "application/json");
                }
                for (name, value) in headers {
                    request = request.header(name, renderer.render(value, false));
                }
                if let Some(body) = body {
                    request = request.body(renderer.render(body, json_body));
                }
                request = request.header("idempotency-key", ctx.idempotency_key());
                let target = target
                    .clone()
                    .unwrap_or_else(|| parsed.host_str().unwrap_or("http").to_owned());
                // The path only: query strings often carry tokens.
                let description = format!(
                    "{method} {}{}",
                    parsed.host_str().unwrap_or(""),
                    parsed.path()
                );
                (request, target, description)
            }
            ActionSpec::Slack { webhook_url, text } => {
                let text = renderer.render(text, false);
                let request = self
                    .http
                    .post(renderer.render(webhook_url, false))
                    .json(&serde_json::json!({ "text": text }));
                (
                    request,
                    "slack".to_owned(),
                    format!("post to Slack: {text}"),
                )
            }
        };
        ctx.perform(&target, description, async move {
            let response = request.send().await.map_err(|e| RuleError::Transient {
                message: format!("request failed: {}", e.without_url()),
                retry_after: None,
            })?;
            classify(response.status(), response.headers())
        })
        .await?;
        Ok(RuleOutcome::Applied { actions: vec![] })
    }
}

/// Maps an HTTP answer to the engine's retry semantics.
pub(crate) fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), RuleError> {
    if status.is_success() {
        return Ok(());
    }
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Err(RuleError::Transient {
            message: format!("HTTP {status}"),
            retry_after,
        })
    } else {
        Err(RuleError::Permanent {
            message: format!("HTTP {status}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::{DeliveryId, ProviderKind};

    fn event(json: serde_json::Value) -> Event {
        Event::new(
            ProviderKind::new("pagerduty"),
            "incident.triggered",
            DeliveryId::new("d1"),
            json.clone(),
        )
        .with_raw_json(Some(bytes::Bytes::from(json.to_string())))
    }

    fn spec(text: &str) -> RuleSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob("incident.*", "incident.triggered"));
        assert!(glob("*", "x"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abcd"));
        assert!(glob("push", "push"));
        assert!(!glob("push", "pushed"));
    }

    #[test]
    fn matching_and_rendering() {
        let rule = DeclarativeRule::new(
            spec(
                r#"
                name = "p1"
                when = { provider = "pagerduty", event = "incident.*", fields = { "/data/priority" = ["P1", "P0"], "/data/n" = 7 } }
                action = { kind = "http", url = "https://x.example/{{ /data/id }}", body = '{"t": "{{ /data/title }}", "p": "{{ /data/priority | map:prio }}", "raw": {{ /data | json }}, "missing": "{{ /nope | default:none }}"}' }
                maps.prio = { P1 = "Highest" }
                "#,
            ),
            reqwest::Client::new(),
        )
        .unwrap();
        let e = event(
            serde_json::json!({"data": {"id": "Q1", "title": "disk \"full\"", "priority": "P1", "n": 7}}),
        );
        assert!(rule.matches(&e));
        assert!(!rule.matches(&event(
            serde_json::json!({"data": {"priority": "P3", "n": 7}})
        )));
        let r = Renderer::new(&e, &rule.spec.maps);
        let body = r.render(
            r#"{"t": "{{ /data/title }}", "p": "{{ /data/priority | map:prio }}", "missing": "{{ /nope | default:none }}"}"#,
            true,
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["t"], "disk \"full\"");
        assert_eq!(parsed["p"], "Highest");
        assert_eq!(parsed["missing"], "none");
        assert_eq!(
            r.render("{{ event.name }}/{{ event.provider }}", false),
            "incident.triggered/pagerduty"
        );
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let cases = [
            (
                r#"name = "x"
                action = { kind = "http", url = "https://x/{{ data }}" }"#,
                "JSON pointer",
            ),
            (
                r#"name = "x"
                action = { kind = "http", url = "https://x/{{ /a | map:nope }}" }"#,
                "no map named",
            ),
            (
                r#"name = "x"
                action = { kind = "http", url = "https://x/{{ /a | shout }}" }"#,
                "unknown filter",
            ),
            (
                r#"name = "x"
                action = { kind = "http", url = "https://x/{{ /a" }"#,
                "unclosed",
            ),
            (
                r#"name = "x"
                action = { kind = "http", method = "BAD METHOD", url = "https://x" }"#,
                "invalid method",
            ),
        ];
        for (text, expected) in cases {
            let err = DeclarativeRule::new(spec(text), reqwest::Client::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
        assert!(toml::from_str::<RuleSpec>("name = \"x\"\naction = { kind = \"fax\" }").is_err());
        assert!(toml::from_str::<RuleSpec>("name = \"x\"\nwhen = { evnt = \"a\" }\naction = { kind = \"slack\", webhook_url = \"u\", text = \"t\" }").is_err());
    }
}
