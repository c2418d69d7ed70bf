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
                let rendered = renderer.render(url, false);
                let parsed = reqwest::Url::parse(&rendered).map_err(|e| RuleError::Permanent {
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
                let description = describe_http(&method, url, &renderer, &parsed);
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
        ctx.perform_call(described_call(&target, &description), async move {
            let response = request.send().await.map_err(|e| RuleError::Transient {
                message: format!("request failed: {}", e.without_url()),
                retry_after: None,
            })?;
            super::report_status(response.status().as_u16());
            classify(response.status(), response.headers())
        })
        .await?;
        Ok(RuleOutcome::Applied { actions: vec![] })
    }
}

/// The recorded call of an action, from its description: an `http` action's is
/// `METHOD host/path` as [`describe_http`] shows it (so never more of the URL than that), a
/// Slack action's says what it posts.
fn described_call(service: &str, description: &str) -> super::Call {
    match description.split_once(' ') {
        Some((method, url))
            if !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) =>
        {
            super::Call::new(service, method, url, description)
        }
        _ => super::Call::new(service, "POST", "", description),
    }
}

/// Hosts whose URL paths are credentials (incoming webhooks): their path is never shown.
const SECRET_PATH_HOSTS: &[&str] = &[
    "hooks.slack.com",
    "hooks.zapier.com",
    "discord.com",
    "discordapp.com",
    "outlook.office.com",
];

/// How an `http` action is recorded in attempts and dry runs (admin API, `jobs show`,
/// `rules dry-run`): method, host and path. Never the query, user info or fragment, which
/// often carry tokens; and the path only in part, since a URL from a secret
/// (`url = { env = "..." }`) is often a webhook URL whose path is the credential. Path
/// segments rendered from the event (`{{ ... }}`) are shown; a literal segment is shown
/// unless it looks like a credential; on incoming-webhook hosts (Slack, ...) no segment is.
fn describe_http(
    method: &reqwest::Method,
    template: &str,
    renderer: &Renderer<'_>,
    url: &reqwest::Url,
) -> String {
    const HIDDEN: &str = "\u{2026}";
    let host = url.host_str().unwrap_or("");
    let secret_host = SECRET_PATH_HOSTS.contains(&host) || host.ends_with(".webhook.office.com");
    if secret_host {
        return format!("{method} {host}/{HIDDEN}");
    }
    let segments: Vec<String> = match template_path_segments(template) {
        Some(segments) => segments
            .into_iter()
            .map(|segment| {
                let literal_parts = literal_parts(segment);
                if literal_parts.iter().any(|part| looks_like_credential(part)) {
                    HIDDEN.to_owned()
                } else if literal_parts.len() == 1 && literal_parts[0] == segment {
                    segment.to_owned()
                } else {
                    renderer.render(segment, false)
                }
            })
            .collect(),
        // The scheme, host and path all come from one expression: the event's data.
        None => url
            .path_segments()
            .into_iter()
            .flatten()
            .map(|segment| {
                if looks_like_credential(segment) {
                    HIDDEN.to_owned()
                } else {
                    segment.to_owned()
                }
            })
            .collect(),
    };
    format!("{method} {host}/{}", segments.join("/"))
}

/// `template` with the bytes inside `{{ ... }}` replaced by `x`: delimiters (`/`, `?`) in
/// the result are the template's own, not a JSON pointer's, at the same byte offsets.
fn mask_expressions(template: &str) -> Vec<u8> {
    let mut masked = template.as_bytes().to_vec();
    let mut from = 0;
    while let Some(start) = template[from..].find("{{").map(|i| from + i) {
        let end = template[start..]
            .find("}}")
            .map_or(template.len(), |i| start + i + 2);
        masked[start..end].fill(b'x');
        from = end;
    }
    masked
}

/// The path segments of a URL template (without the query and fragment), or `None` if its
/// path cannot be told before rendering (no literal `scheme://`).
fn template_path_segments(template: &str) -> Option<Vec<&str>> {
    let masked = mask_expressions(template);
    let find = |from: usize, pred: &dyn Fn(u8) -> bool| {
        masked[from..]
            .iter()
            .position(|b| pred(*b))
            .map(|i| from + i)
    };
    let authority = masked.windows(3).position(|w| w == b"://")? + 3;
    let Some(path_start) =
        find(authority, &|b| matches!(b, b'/' | b'?' | b'#')).filter(|at| masked[*at] == b'/')
    else {
        return Some(Vec::new());
    };
    let path_end = find(path_start, &|b| matches!(b, b'?' | b'#')).unwrap_or(masked.len());
    let mut segments = Vec::new();
    let mut start = path_start + 1;
    while let Some(slash) = find(start, &|b| b == b'/').filter(|at| *at < path_end) {
        segments.push(&template[start..slash]);
        start = slash + 1;
    }
    segments.push(&template[start..path_end]);
    Some(segments)
}

/// The literal text of a template segment, between its expressions.
fn literal_parts(segment: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = segment;
    while let Some(start) = rest.find("{{") {
        parts.push(&rest[..start]);
        rest = rest[start..]
            .find("}}")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    parts.push(rest);
    parts
}

/// Whether a literal path segment looks like a token rather than a word: long, or mixing
/// letters and digits (`T0123ABC`, a UUID, `rule-path-0c1d2e`). `v1`, `api`, `issues`,
/// `2024-11-06` are shown.
fn looks_like_credential(segment: &str) -> bool {
    let has = |pred: fn(&u8) -> bool| segment.as_bytes().iter().any(pred);
    segment.len() > 20
        || (segment.len() >= 8 && has(u8::is_ascii_digit) && has(u8::is_ascii_alphabetic))
}

/// Maps an HTTP answer to the engine's retry semantics.
pub(crate) fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), RuleError> {
    if status.is_success() {
        return Ok(());
    }
    // Seconds or an HTTP date, read as the providers' API clients read it.
    let retry_after = hookbridge_providers::api::retry_after_header(headers);
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
    fn http_actions_are_described_without_credentials() {
        let e = event(serde_json::json!({"data": {
            "id": "Q1",
            "key": "PROJ-123",
            "path": "a/b",
            "url": "https://y.example/items/0c1d2e3f4a5b?k=1",
        }}));
        let maps = BTreeMap::new();
        let r = Renderer::new(&e, &maps);
        let describe = |template: &str| {
            let url = reqwest::Url::parse(&r.render(template, false)).unwrap();
            describe_http(&reqwest::Method::POST, template, &r, &url)
        };
        let cases = [
            // A literal token-like segment, e.g. a whole URL from `{ env = "..." }`.
            (
                "http://127.0.0.1:9/hook/rule-path-secret-0c1d2e",
                "POST 127.0.0.1/hook/\u{2026}",
            ),
            (
                "https://hooks.slack.com/services/T0123/B0456/abcdef",
                "POST hooks.slack.com/\u{2026}",
            ),
            (
                "https://hooks.slack.com/services/{{ /data/id }}",
                "POST hooks.slack.com/\u{2026}",
            ),
            (
                "https://acme.webhook.office.com/webhookb2/x",
                "POST acme.webhook.office.com/\u{2026}",
            ),
            // Segments from the event are shown; the query, fragment and user info never.
            (
                "https://api.example.com/rest/api/3/issue/{{ /data/key }}/comment?token=s3cr3t0query#f",
                "POST api.example.com/rest/api/3/issue/PROJ-123/comment",
            ),
            (
                "https://me:pa55word0x@x.example/v1/{{ /data/id }}-x",
                "POST x.example/v1/Q1-x",
            ),
            (
                "https://x.example/{{ /data/path }}/a0b1c2d3e4f5",
                "POST x.example/a/b/\u{2026}",
            ),
            (
                "https://x.example/{{ /data/id }}abcdefgh12345678",
                "POST x.example/\u{2026}",
            ),
            (
                "https://x.example/a{{ /data/id }}b/c?next=/y/0c1d2e3f4a5b",
                "POST x.example/aQ1b/c",
            ),
            ("https://x.example", "POST x.example/"),
            ("https://x.example?k=0c1d2e3f4a5b", "POST x.example/"),
            // The whole URL from the event: its segments are judged one by one.
            ("{{ /data/url }}", "POST y.example/items/\u{2026}"),
        ];
        for (template, expected) in cases {
            assert_eq!(describe(template), expected, "{template}");
        }
        assert!(looks_like_credential(
            "550e8400-e29b-41d4-a716-446655440000"
        ));
        assert!(looks_like_credential("XXXXXXXXXXXXXXXXXXXXXXXX"));
        for word in ["v1", "api", "issues", "2024-11-06", "octo-repo"] {
            assert!(!looks_like_credential(word), "{word}");
        }
    }

    #[test]
    fn classify_reads_retry_after_in_seconds_and_as_a_date() {
        use reqwest::StatusCode;
        use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
        use std::time::Duration;
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            headers
        };
        let wait = |status: u16, headers: &HeaderMap| match classify(
            StatusCode::from_u16(status).unwrap(),
            headers,
        ) {
            Err(RuleError::Transient { retry_after, .. }) => retry_after,
            other => panic!("{status}: {other:?}"),
        };
        assert_eq!(wait(429, &with("7")), Some(Duration::from_secs(7)));
        let http_date = |at: time::OffsetDateTime| {
            at.format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .unwrap()
        };
        let soon = http_date(time::OffsetDateTime::now_utc() + Duration::from_secs(90));
        let asked = wait(503, &with(&soon)).expect("the date form is read");
        assert!(
            asked > Duration::from_secs(80) && asked <= Duration::from_secs(90),
            "{asked:?}"
        );
        let past = http_date(time::OffsetDateTime::now_utc() - Duration::from_secs(90));
        assert_eq!(wait(429, &with(&past)), Some(Duration::ZERO));
        assert_eq!(wait(500, &with("whenever")), None);
        assert_eq!(wait(408, &HeaderMap::new()), None);
        assert!(classify(StatusCode::OK, &with("7")).is_ok());
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, &with("7")),
            Err(RuleError::Permanent { .. })
        ));
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
