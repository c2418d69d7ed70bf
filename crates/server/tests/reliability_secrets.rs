//! No secret ever leaves: a server with every provider configured (secrets from the
//! environment and literals), an admin token, rules whose URLs and headers are secrets, and —
//! with `HOOKBRIDGE_TEST_PG_URL` — a PostgreSQL URL with a password, logging at `trace`.
//! Good and bad deliveries, handshakes, failing and succeeding rules, dead letters and
//! replays, dry runs, the admin API, `/metrics`, the CLI (`check-config`, `deliveries`,
//! `jobs`, `dead-letters`, `rules`, `verify`, `send`) and configuration and store errors are
//! all exercised; then every log line, stdout, HTTP answer, metric and admin/CLI output is
//! searched for every secret value. None may appear.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hookbridge_core::{Provider, Secret};
use time::OffsetDateTime;

const TRAVIS_PUBLIC: &str =
    include_str!("../../providers/samples/travis/TEST-ONLY-travis-public-key.spki.pem");
const TRAVIS_PRIVATE: &str =
    include_str!("../../providers/samples/travis/TEST-ONLY-travis-signing-key.pem");

const GH_OLD: &str = "gh-rotated-out-literal-88ab1f";
const PD: &str = "pd-webhook-secret-2f0e91";
const SLACK: &str = "slack-signing-secret-7a3b55";
const TRELLO: &str = "trello-app-secret-literal-9c4d22";
const WHSEC: &str = "whsec_c2VjcmV0LXN0YW5kYXJkLXdlYmhvb2tzLWtleQ==";
const WHSEC_KEY: &str = "c2VjcmV0LXN0YW5kYXJkLXdlYmhvb2tzLWtleQ";
const STRIPE: &str = "whsec_stripe_secret_4be07d";
const JIRA: &str = "jira-webhook-secret-e61f0a";
const JIRA_TOKEN: &str = "jira-url-token-3b9f5c0d2a";
const GITLAB: &str = "gitlab-token-0f7e3a91cc";
const TRAVIS_TOKEN: &str = "travis-user-token-a4c8e2";
const ASANA: &str = "asana-hook-secret-d2e4f6a8b0c1";
const ADMIN: &str = "admin-bearer-token-61d0c9b7e3";
const RULE_PATH: &str = "rule-path-secret-0c1d2e";
const RULE_QUERY: &str = "rule-query-secret-7f6e5d";
const RULE_AUTH: &str = "rule-bearer-secret-4a3b2c";
const UNREACHABLE_QUERY: &str = "unreachable-query-secret-1f2e";
const SLACK_HOOK: &str = "slack-webhook-path-secret-TX9";
const BROKEN_LITERAL: &str = "literal-secret-on-a-broken-line-77aa";
const SHORT_TOKEN: &str = "tok-5xq9z";
const DEAD_PG_PASSWORD: &str = "pg-password-of-a-dead-server-6b2";
const GH_API_TOKEN: &str = "ghp_apitokensecret0a1b2c3d4e5f";
const TRELLO_KEY: &str = "trello-api-key-secret-5e6f";
const TRELLO_TOKEN: &str = "trello-api-token-secret-7a8b";
const JIRA_CLIENT_SECRET: &str = "jira-oauth2-client-secret-91ab";
const ASANA_CLIENT_SECRET: &str = "asana-oauth-client-secret-c3d4";
const GITHUB_CLIENT_SECRET: &str = "github-oauth-client-secret-e5f6";
/// `HOOKBRIDGE_TOKEN_KEY`: 32 bytes, base64.
const TOKEN_KEY: &str = "aGJ0b2tlbmtleS1zZWNyZXQtMzItYnl0ZXMtbG9uZyE=";
/// The Jira Data Center application link's private key (`{ file = ... }`).
const JIRA_PRIVATE_KEY: &str =
    include_str!("../../providers/samples/travis/TEST-ONLY-travis-signing-key.pem");

struct Setup {
    env: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
    store: String,
    _schema: Option<PgSchema>,
}

/// The store: PostgreSQL with a password in its URL when a test database is configured,
/// else SQLite.
async fn store_setup(
    env: &mut Vec<(String, String)>,
    secrets: &mut Vec<(String, String)>,
) -> (String, Option<PgSchema>) {
    let Some(schema) = PgSchema::new("secrets") else {
        return (
            "[store]\nkind = \"sqlite\"\npath = \"data/hookbridge.db\"\n".to_owned(),
            None,
        );
    };
    let mut url = reqwest::Url::parse(&schema.url).unwrap();
    let password = match url.password() {
        Some(p) => p.to_owned(),
        None => {
            // A server that trusts the connection ignores a password it did not ask for:
            // give the URL one, so that there is a password to leak.
            let p = "pg-password-0e5d4c3b2a";
            url.set_password(Some(p)).unwrap();
            p.to_owned()
        }
    };
    let with_password = url.to_string();
    use sqlx::Connection as _;
    let url = match sqlx::PgConnection::connect(&with_password).await {
        Ok(conn) => {
            let _ = conn.close().await;
            secrets.push(("PostgreSQL password".into(), password));
            with_password
        }
        Err(_) => schema.url.clone(),
    };
    secrets.push(("PostgreSQL URL".into(), url.clone()));
    env.push(("HB_SEC_PG_URL".into(), url));
    let store = format!(
        "[store]\nkind = \"postgres\"\nurl = {{ env = \"HB_SEC_PG_URL\" }}\nschema = \"{}\"\nmax_connections = 4\n",
        schema.name
    );
    (store, Some(schema))
}

async fn setup(mock: &str) -> Setup {
    let mut env: Vec<(String, String)> = vec![
        ("HB_SEC_GH".into(), SECRET.into()),
        ("HB_SEC_PD".into(), PD.into()),
        ("HB_SEC_SLACK".into(), SLACK.into()),
        ("HB_SEC_WHSEC".into(), WHSEC.into()),
        ("HB_SEC_STRIPE".into(), STRIPE.into()),
        ("HB_SEC_JIRA".into(), JIRA.into()),
        ("HB_SEC_JIRA_TOKEN".into(), JIRA_TOKEN.into()),
        ("HB_SEC_GITLAB".into(), GITLAB.into()),
        ("HB_SEC_TRAVIS".into(), TRAVIS_TOKEN.into()),
        ("HB_SEC_ADMIN".into(), ADMIN.into()),
        (
            "HB_SEC_RULE_URL".into(),
            format!("{mock}/hook?token={RULE_QUERY}"),
        ),
        ("HB_SEC_RULE_AUTH".into(), format!("Bearer {RULE_AUTH}")),
        (
            "HB_SEC_UNREACHABLE_URL".into(),
            format!("http://127.0.0.1:1/x?key={UNREACHABLE_QUERY}"),
        ),
        (
            "HB_SEC_SLACK_HOOK".into(),
            format!("{mock}/services/T000/B000/{SLACK_HOOK}"),
        ),
        ("HB_SEC_GH_API".into(), GH_API_TOKEN.into()),
        ("HB_SEC_TRELLO_KEY".into(), TRELLO_KEY.into()),
        ("HB_SEC_TRELLO_TOKEN".into(), TRELLO_TOKEN.into()),
        ("HB_SEC_JIRA_CLIENT".into(), JIRA_CLIENT_SECRET.into()),
        ("HB_SEC_ASANA_CLIENT".into(), ASANA_CLIENT_SECRET.into()),
        ("HB_SEC_GITHUB_CLIENT".into(), GITHUB_CLIENT_SECRET.into()),
        ("HOOKBRIDGE_TOKEN_KEY".into(), TOKEN_KEY.into()),
        ("HOOKBRIDGE_LOG".into(), "trace".into()),
    ];
    let mut secrets: Vec<(String, String)> = [
        ("GitHub secret", SECRET),
        ("GitHub rotated-out secret (literal)", GH_OLD),
        ("PagerDuty secret", PD),
        ("Slack signing secret", SLACK),
        ("Trello secret (literal)", TRELLO),
        ("Standard Webhooks secret", WHSEC),
        ("Standard Webhooks key", WHSEC_KEY),
        ("Stripe secret", STRIPE),
        ("Jira secret", JIRA),
        ("Jira URL token", JIRA_TOKEN),
        ("GitLab token", GITLAB),
        ("Travis CI user token", TRAVIS_TOKEN),
        ("Asana learned secret", ASANA),
        ("admin token", ADMIN),
        ("rule URL query secret", RULE_QUERY),
        ("rule Authorization header", RULE_AUTH),
        ("unreachable rule's query secret", UNREACHABLE_QUERY),
        ("Slack incoming webhook path", SLACK_HOOK),
        ("literal on a broken config line", BROKEN_LITERAL),
        ("too-short admin token", SHORT_TOKEN),
        ("password of an unreachable database", DEAD_PG_PASSWORD),
        ("GitHub API token", GH_API_TOKEN),
        ("Trello API key", TRELLO_KEY),
        ("Trello API token", TRELLO_TOKEN),
        ("Jira OAuth 2.0 client secret", JIRA_CLIENT_SECRET),
        ("Asana OAuth client secret", ASANA_CLIENT_SECRET),
        ("GitHub OAuth client secret", GITHUB_CLIENT_SECRET),
        ("token encryption key", TOKEN_KEY),
    ]
    .into_iter()
    .map(|(l, v)| (l.to_owned(), v.to_owned()))
    .collect();
    // Any line of the private key's body.
    for (i, line) in JIRA_PRIVATE_KEY
        .lines()
        .filter(|l| l.len() >= 40 && !l.starts_with("-----"))
        .enumerate()
    {
        secrets.push((
            format!("Jira OAuth 1.0a private key, line {}", i + 2),
            line.to_owned(),
        ));
    }
    let (store, schema) = store_setup(&mut env, &mut secrets).await;
    Setup {
        env,
        secrets,
        store,
        _schema: schema,
    }
}

fn config(store: &str, mock: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5
public_url = "https://hooks.example.com"

{store}

[engine]
max_attempts = 2
backoff_base_ms = 10
backoff_max_secs = 1
lease_secs = 2
poll_interval_ms = 50
# No circuit breaker: its cool-down would outlast the wait for the failing rules' jobs.
circuit_failures = 0

[admin]
token = {{ env = "HB_SEC_ADMIN" }}

[endpoints.github]
provider = "github"
secrets = ["{GH_OLD}", {{ env = "HB_SEC_GH" }}]

[endpoints.pagerduty]
provider = "pagerduty"
secret = {{ env = "HB_SEC_PD" }}

[endpoints.slack]
provider = "slack"
secret = {{ env = "HB_SEC_SLACK" }}

[endpoints.trello]
provider = "trello"
secret = "{TRELLO}"
callback_url = "https://hooks.example.com/hooks/trello"

[endpoints.standard]
provider = "standard-webhooks"
secret = {{ env = "HB_SEC_WHSEC" }}

[endpoints.stripe]
provider = "standard-webhooks"
scheme = "stripe"
secret = {{ env = "HB_SEC_STRIPE" }}

[endpoints.travis]
provider = "travis"
legacy_token = {{ env = "HB_SEC_TRAVIS" }}
allow_legacy_authorization = true
public_key = """
{TRAVIS_PUBLIC}"""

[endpoints.asana]
provider = "asana"

[endpoints.jira]
provider = "jira"
secret = {{ env = "HB_SEC_JIRA" }}

[endpoints.jira-legacy]
provider = "jira"
unsigned = true
token = {{ env = "HB_SEC_JIRA_TOKEN" }}

[endpoints.gitlab]
provider = "gitlab"
secret = {{ env = "HB_SEC_GITLAB" }}

[connections.gh]
kind = "github"
base_url = "{mock}/gh-api"
token = {{ env = "HB_SEC_GH_API" }}

[connections.trello]
kind = "trello"
base_url = "{mock}/trello-api"
key = {{ env = "HB_SEC_TRELLO_KEY" }}
token = {{ env = "HB_SEC_TRELLO_TOKEN" }}

[connections.jira]
kind = "jira-oauth2"
client_id = "hb-jira-client"
client_secret = {{ env = "HB_SEC_JIRA_CLIENT" }}
redirect_url = "https://hooks.example.com/oauth/jira/callback"
token_url = "{mock}/oauth-token/jira"
scopes = ["read:jira-work"]

[connections.jira-dc]
kind = "jira-oauth1"
base_url = "{mock}/jira"
consumer_key = "hookbridge"
private_key = {{ file = "jira-oauth.pem" }}
redirect_url = "https://hooks.example.com/oauth/jira-dc/callback"

[connections.asana]
kind = "asana-oauth"
client_id = "hb-asana-client"
client_secret = {{ env = "HB_SEC_ASANA_CLIENT" }}
redirect_url = "https://hooks.example.com/oauth/asana/callback"
token_url = "{mock}/oauth-token/asana"

[connections.gh-user]
kind = "github-oauth"
client_id = "hb-github-client"
client_secret = {{ env = "HB_SEC_GITHUB_CLIENT" }}
redirect_url = "https://hooks.example.com/oauth/gh-user/callback"
token_url = "{mock}/oauth-token/github"

[[hooks]]
endpoint = "github"
connection = "gh"
repository = "octo-org/octo-repo"
events = ["issues"]

[[hooks]]
endpoint = "trello"
connection = "trello"
model = "5abbe4b7ddc1b351ef961414"

[[rules]]
name = "secret-url"
action = {{ kind = "http", url = {{ env = "HB_SEC_RULE_URL" }}, headers = {{ authorization = {{ env = "HB_SEC_RULE_AUTH" }} }}, body = '{{"title": "{{{{ /issue/title }}}}"}}' }}
[rules.when]
provider = "github"
event = "issues.*"

[[rules]]
name = "unreachable"
action = {{ kind = "http", url = {{ env = "HB_SEC_UNREACHABLE_URL" }} }}
[rules.when]
provider = "github"
event = "issues.*"

[[rules]]
name = "slack-hook"
action = {{ kind = "slack", webhook_url = {{ env = "HB_SEC_SLACK_HOOK" }}, text = "{{{{ /issue/title }}}}" }}
[rules.when]
provider = "github"
event = "issues.*"

[[rules]]
name = "works"
action = {{ kind = "http", url = "{mock}/ok" }}
[rules.when]
provider = "github"
event = "issues.*"
"#
    )
}

/// What a sender of `endpoint` signs with.
fn signer(endpoint: &str) -> Arc<dyn Provider> {
    let table = |text: &str| -> toml::Table { toml::from_str(text).unwrap() };
    let s = |v: &str| vec![Secret::new(v)];
    let build = |kind: &str, secrets: Vec<Secret>, options: toml::Table| {
        hookbridge_providers::build(kind, secrets, options).unwrap()
    };
    match endpoint {
        "github" => build("github", s(SECRET), toml::Table::new()),
        "pagerduty" => build("pagerduty", s(PD), toml::Table::new()),
        "slack" => build("slack", s(SLACK), toml::Table::new()),
        "trello" => build(
            "trello",
            s(TRELLO),
            table(r#"callback_url = "https://hooks.example.com/hooks/trello""#),
        ),
        "standard" => build("standard-webhooks", s(WHSEC), toml::Table::new()),
        "stripe" => build(
            "standard-webhooks",
            s(STRIPE),
            table(r#"scheme = "stripe""#),
        ),
        "jira" => build("jira", s(JIRA), toml::Table::new()),
        "jira-legacy" => build(
            "jira",
            vec![],
            table(&format!("unsigned = true\ntoken = \"{JIRA_TOKEN}\"")),
        ),
        "gitlab" => build("gitlab", s(GITLAB), toml::Table::new()),
        "asana" => build("asana", s(ASANA), toml::Table::new()),
        "travis" => {
            let options = table(&format!(
                "legacy_token = \"{TRAVIS_TOKEN}\"\nallow_legacy_authorization = true\npublic_key = \"\"\"\n{TRAVIS_PUBLIC}\"\"\""
            ))
            .try_into()
            .unwrap();
            let key = hookbridge_providers::travis::parse_signing_key_pem(TRAVIS_PRIVATE).unwrap();
            Arc::new(
                hookbridge_providers::travis::Travis::new(vec![], options)
                    .unwrap()
                    .with_test_signing_key(key),
            )
        }
        other => panic!("no signer for {other}"),
    }
}

/// Everything a user or an operator could see, by where it was seen.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, source: impl Into<String>, text: impl Into<String>) {
        self.0.push((source.into(), text.into()));
    }

    async fn response(&mut self, source: impl Into<String>, r: reqwest::Response) -> (u16, String) {
        let status = r.status().as_u16();
        let mut text = format!("{status}\n");
        for (name, value) in r.headers() {
            text.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        let body = r.text().await.unwrap_or_default();
        text.push_str(&body);
        self.add(source, text);
        (status, body)
    }
}

fn cli(dir: &Path, env: &[(String, String)], args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(args)
        .current_dir(dir)
        .env_remove("HOOKBRIDGE_CONFIG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_errors_metrics_admin_or_cli_output() {
    // The rules' service: the secret-URL rule's calls fail (500), the Slack webhook is gone
    // (404), the plain one works.
    let mock = MockService::start(|req, _| {
        let refused = ["/gh-api", "/trello-api", "/oauth-token", "/jira"];
        if refused.iter().any(|p| req.path.starts_with(p)) {
            // The services refuse the credentials.
            MockReply::status(401)
        } else if req.path.starts_with("/hook") {
            MockReply::status(500)
        } else if req.path.starts_with("/services/") {
            MockReply::status(404)
        } else {
            MockReply::status(200)
        }
    })
    .await;
    let setup = setup(&mock.uri()).await;
    let env: Vec<(&str, &str)> = setup
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jira-oauth.pem"), JIRA_PRIVATE_KEY).unwrap();
    let config_text = config(&setup.store, &mock.uri());
    let mut server = Server::start_with_env(dir.path(), &config_text, &env);
    let client = reqwest::Client::new();
    let mut seen = Seen::default();
    // A signature the server computes while refusing a forgery must not come back either:
    // that would make it a signing oracle.
    let mut oracles: Vec<(String, String)> = Vec::new();

    // Asana's handshake hands over its secret; only that answer may echo it.
    let r = client
        .post(server.url("/hooks/asana"))
        .header("x-hook-secret", ASANA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hook-secret"], ASANA);
    let r = client
        .post(server.url("/hooks/asana"))
        .header("x-hook-secret", "attacker-replacement-secret")
        .send()
        .await
        .unwrap();
    seen.response("second Asana handshake", r).await;

    // Every provider: its first sample signed right (accepted), tampered, and unsigned.
    let now = OffsetDateTime::now_utc();
    for endpoint in [
        "github",
        "pagerduty",
        "slack",
        "trello",
        "standard",
        "stripe",
        "travis",
        "asana",
        "jira",
        "jira-legacy",
        "gitlab",
    ] {
        let provider = signer(endpoint);
        let sample = &provider.samples()[0];
        let signed = provider
            .sign(
                sample.event_type,
                sample.json.as_bytes(),
                &format!("{endpoint}-good"),
                now,
            )
            .unwrap();
        let mut url = server.url(&format!("/hooks/{endpoint}"));
        if let Some(q) = &signed.query {
            url = format!("{url}?{q}");
        }
        let r = client
            .post(&url)
            .headers(signed.headers.clone())
            .body(signed.body.clone())
            .send()
            .await
            .unwrap();
        let (status, body) = seen.response(format!("{endpoint} good delivery"), r).await;
        assert!(
            status == 202 || status == 200,
            "{endpoint}: {status} {body}"
        );
        let mut tampered = signed.body.to_vec();
        let at = tampered
            .iter()
            .rposition(|b| b.is_ascii_alphanumeric())
            .unwrap();
        tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
        let r = client
            .post(&url)
            .headers(signed.headers.clone())
            .body(tampered)
            .send()
            .await
            .unwrap();
        seen.response(format!("{endpoint} tampered delivery"), r)
            .await;
        let r = client
            .post(server.url(&format!("/hooks/{endpoint}?token=wrong-token")))
            .header("content-type", "application/json")
            .body(sample.json.to_owned())
            .send()
            .await
            .unwrap();
        seen.response(format!("{endpoint} unsigned delivery"), r)
            .await;
    }
    // GitHub issues: the rules' input. Three of them, and a forgery.
    for i in 0..3 {
        let r = github_post(
            &client,
            &server.url("/hooks/github"),
            "issues",
            &format!("issue-{i}"),
            fixture("issues.opened.json"),
        )
        .send()
        .await
        .unwrap();
        let (status, _) = seen.response("github issue", r).await;
        assert_eq!(status, 202);
    }
    let forged = br#"{"action":"opened","forged":true}"#.to_vec();
    oracles.push((
        "correct signature of a forged body".into(),
        sign256(SECRET, &forged),
    ));
    let r = client
        .post(server.url("/hooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", "forged")
        .header("x-hub-signature-256", sign256("guess", &forged))
        .body(forged)
        .send()
        .await
        .unwrap();
    seen.response("forged github delivery", r).await;

    // The rules run: the secret-URL, unreachable and Slack rules dead-letter, one works.
    let admin = |path: String| {
        let client = client.clone();
        let url = server.url(&path);
        async move { client.get(url).bearer_auth(ADMIN).send().await.unwrap() }
    };
    let count = |state: &'static str| {
        let admin = &admin;
        async move {
            let list: serde_json::Value = admin(format!("/admin/jobs?state={state}&limit=500"))
                .await
                .json()
                .await
                .unwrap();
            list["jobs"].as_array().unwrap().len()
        }
    };
    wait_until(
        "the rules' jobs dead or done",
        Duration::from_secs(30),
        || async {
            count("pending").await == 0
                && count("running").await == 0
                && count("dead").await >= 9
                && count("done").await >= 3
        },
    )
    .await;

    // The admin API, all of it; and without the token, every route is refused.
    let (_, deliveries) = seen
        .response(
            "admin deliveries",
            admin("/admin/deliveries?limit=500".into()).await,
        )
        .await;
    let deliveries: serde_json::Value = serde_json::from_str(&deliveries).unwrap();
    let seqs: Vec<i64> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["seq"].as_i64().unwrap())
        .collect();
    for seq in &seqs {
        seen.response(
            format!("admin delivery {seq}"),
            admin(format!("/admin/deliveries/{seq}")).await,
        )
        .await;
        let r = client
            .post(server.url(&format!("/admin/deliveries/{seq}/dry-run")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        seen.response(format!("admin dry run {seq}"), r).await;
    }
    let (_, jobs) = seen
        .response("admin jobs", admin("/admin/jobs?limit=500".into()).await)
        .await;
    let jobs: serde_json::Value = serde_json::from_str(&jobs).unwrap();
    let job_ids: Vec<i64> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    for id in &job_ids {
        seen.response(
            format!("admin job {id}"),
            admin(format!("/admin/jobs/{id}")).await,
        )
        .await;
    }
    for path in ["/admin/dead-letters", "/admin/links", "/admin/rules"] {
        seen.response(format!("admin {path}"), admin(path.into()).await)
            .await;
    }
    let unauthorized = [
        ("GET", "/admin/deliveries".to_owned()),
        ("GET", format!("/admin/deliveries/{}", seqs[0])),
        ("POST", format!("/admin/deliveries/{}/replay", seqs[0])),
        ("POST", format!("/admin/deliveries/{}/dry-run", seqs[0])),
        ("GET", "/admin/jobs".to_owned()),
        ("GET", format!("/admin/jobs/{}", job_ids[0])),
        ("POST", format!("/admin/jobs/{}/replay", job_ids[0])),
        ("GET", "/admin/dead-letters".to_owned()),
        ("GET", "/admin/links".to_owned()),
        ("GET", "/admin/rules".to_owned()),
        // Unknown admin paths too: routes cannot be probed without the token.
        ("GET", "/admin/no-such-route".to_owned()),
        ("POST", "/admin/jobs/1/no-such-action".to_owned()),
    ];
    for (method, path) in &unauthorized {
        for token in [None, Some("wrong-token"), Some(&ADMIN[..ADMIN.len() - 1])] {
            let mut request = client.request(method.parse().unwrap(), server.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let (status, _) = seen
                .response(
                    format!("admin {method} {path} without the token"),
                    request.send().await.unwrap(),
                )
                .await;
            assert_eq!(status, 401, "{method} {path} with {token:?}");
        }
        // The token in another scheme, or as a query parameter, is not accepted either.
        let r = client
            .request(
                method.parse().unwrap(),
                server.url(&format!("{path}?token={ADMIN}")),
            )
            .header("authorization", format!("Basic {ADMIN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} with Basic");
    }
    // Replays: a dead letter and a delivery, which fail again.
    let dead: serde_json::Value = admin("/admin/dead-letters".into())
        .await
        .json()
        .await
        .unwrap();
    let dead_id = dead["jobs"][0]["id"].as_i64().unwrap();
    let r = client
        .post(server.url(&format!("/admin/jobs/{dead_id}/replay")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    seen.response("admin job replay", r).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = client.get(server.url("/metrics")).send().await.unwrap();
    seen.response("metrics", r).await;
    let r = client.get(server.url("/readyz")).send().await.unwrap();
    seen.response("readyz", r).await;

    // OAuth logins: started, then called back with a code the (mock) provider refuses.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // (connection, login status, callback status): OAuth 2.0 logins redirect to the provider
    // and their callbacks fail at the token exchange (502); the OAuth 1.0a login fails at
    // the request token (502), so its callback has no login to finish (400).
    for (connection, login_status, callback_status) in [
        ("jira", 302, 502),
        ("jira-dc", 502, 400),
        ("asana", 302, 502),
        ("gh-user", 302, 502),
    ] {
        let r = no_redirects
            .get(server.url(&format!("/oauth/{connection}/login")))
            .send()
            .await
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let cookie = r
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let (status, _) = seen.response(format!("OAuth login {connection}"), r).await;
        assert_eq!(status, login_status, "login {connection}");
        let state = location
            .as_deref()
            .and_then(|l| reqwest::Url::parse(l).ok())
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "state")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_else(|| "no-state".into());
        let mut callback = no_redirects.get(server.url(&format!(
            "/oauth/{connection}/callback?code=refused-code&state={state}&oauth_token={state}&oauth_verifier=v"
        )));
        if let Some(cookie) = cookie {
            callback = callback.header("cookie", cookie);
        }
        let (status, body) = seen
            .response(
                format!("OAuth callback {connection}"),
                callback.send().await.unwrap(),
            )
            .await;
        assert_eq!(status, callback_status, "callback {connection}: {body}");
    }

    // The CLI, against the same configuration and store, logging at trace too.
    let cfg = "hookbridge.toml";
    let mut commands: Vec<Vec<String>> = vec![
        vec!["check-config".into()],
        vec!["deliveries".into(), "list".into()],
        vec!["jobs".into(), "list".into()],
        vec!["jobs".into(), "list".into(), "--json".into()],
        vec!["dead-letters".into(), "list".into()],
        vec!["rules".into(), "list".into()],
        vec![
            "rules".into(),
            "dry-run".into(),
            "--delivery".into(),
            "issue-0".into(),
        ],
    ];
    for d in deliveries["deliveries"].as_array().unwrap() {
        commands.push(vec![
            "deliveries".into(),
            "show".into(),
            d["delivery_id"].as_str().unwrap().into(),
            "--endpoint".into(),
            d["endpoint"].as_str().unwrap().into(),
        ]);
    }
    for id in &job_ids {
        commands.push(vec!["jobs".into(), "show".into(), id.to_string()]);
    }
    for args in &commands {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--config", cfg]);
        let (code, out) = cli(dir.path(), &setup.env, &args);
        assert_eq!(code, Some(0), "hookbridge {args:?}: {out}");
        seen.add(format!("hookbridge {}", args.join(" ")), out);
    }
    // Webhook registration against the (refusing) APIs.
    for args in [&["hooks", "list"][..], &["hooks", "sync", "--dry-run"][..]] {
        let mut args = args.to_vec();
        args.extend(["--config", cfg]);
        let (code, out) = cli(dir.path(), &setup.env, &args);
        assert!(
            code != Some(0) && out.contains("authentication failed"),
            "{args:?}: {out}"
        );
        seen.add(format!("hookbridge {}", args.join(" ")), out);
    }
    // `verify` of a good and of a forged delivery, `send` of a sample.
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, fixture("issues.opened.json")).unwrap();
    let forged_path = dir.path().join("forged.json");
    std::fs::write(&forged_path, br#"{"action":"opened","verified":"never"}"#).unwrap();
    for (file, signature) in [
        (&body_path, sign256(SECRET, &fixture("issues.opened.json"))),
        (&forged_path, sign256("guess", b"x")),
    ] {
        let body_file = file.to_str().unwrap();
        let header = format!("X-Hub-Signature-256: {signature}");
        let (_, out) = cli(
            dir.path(),
            &setup.env,
            &[
                "verify",
                "--body",
                body_file,
                "-H",
                "X-GitHub-Event: issues",
                "-H",
                "X-GitHub-Delivery: v-1",
                "-H",
                &header,
                "--endpoint",
                "github",
                "--config",
                cfg,
            ],
        );
        seen.add("hookbridge verify", out);
    }
    oracles.push((
        "correct signature of the body verified with a wrong one".into(),
        sign256(SECRET, &std::fs::read(&forged_path).unwrap()),
    ));
    let to = server.url("/hooks/github");
    let (code, out) = cli(
        dir.path(),
        &setup.env,
        &[
            "send",
            "--event",
            "issues.opened",
            "--to",
            &to,
            "--endpoint",
            "github",
            "--config",
            cfg,
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    seen.add("hookbridge send", out);

    // Configuration and store errors.
    let broken = [
        (
            "broken line",
            format!("[endpoints.gh]\nprovider = \"github\"\nsecret = \"{BROKEN_LITERAL}\" oops\n"),
        ),
        (
            "unknown key",
            format!(
                "[endpoints.gh]\nprovider = \"github\"\nsecret = \"{BROKEN_LITERAL}\"\nsecert = \"{BROKEN_LITERAL}\"\n"
            ),
        ),
        (
            "short admin token",
            format!(
                "[admin]\ntoken = \"{SHORT_TOKEN}\"\n[endpoints.gh]\nprovider = \"github\"\nsecret = \"{BROKEN_LITERAL}\"\n"
            ),
        ),
        (
            "bad rule",
            format!(
                "[endpoints.gh]\nprovider = \"github\"\nsecret = \"x\"\n[[rules]]\nname = \"r\"\naction = {{ kind = \"http\", url = \"https://h/{BROKEN_LITERAL}/{{{{ nope }}}}\" }}\n"
            ),
        ),
    ];
    for (name, text) in &broken {
        std::fs::write(dir.path().join("broken.toml"), text).unwrap();
        let (code, out) = cli(
            dir.path(),
            &setup.env,
            &["check-config", "--config", "broken.toml"],
        );
        assert_eq!(code, Some(2), "{name}: {out}");
        seen.add(format!("check-config, {name}"), out);
    }
    let dead_pg = format!(
        "[store]\nkind = \"postgres\"\nurl = \"postgres://hb:{DEAD_PG_PASSWORD}@127.0.0.1:1/hb\"\n[endpoints.gh]\nprovider = \"github\"\nsecret = \"x\"\n"
    );
    std::fs::write(dir.path().join("dead-pg.toml"), dead_pg).unwrap();
    for args in [
        &["deliveries", "list", "--config", "dead-pg.toml"][..],
        &["serve", "--config", "dead-pg.toml"][..],
    ] {
        let (code, out) = cli(dir.path(), &setup.env, args);
        assert_ne!(code, Some(0), "{args:?} with no database: {out}");
        seen.add(
            format!("hookbridge {} (database down)", args.join(" ")),
            out,
        );
    }

    // Stop, then read every log line and stdout.
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let logs = server.logs();
    assert!(
        logs.contains("TRACE") && logs.lines().count() > 100,
        "the server did not log at trace level"
    );
    seen.add("server log (stderr, trace)", logs);
    seen.add("server stdout", server.stdout());

    // The search.
    let mut leaks = Vec::new();
    for (label, value) in setup.secrets.iter().chain(&oracles) {
        for (source, text) in &seen.0 {
            if let Some(at) = text.find(value.as_str()) {
                let start = text[..at]
                    .char_indices()
                    .rev()
                    .nth(80)
                    .map_or(0, |(i, _)| i);
                let end = (at + value.len() + 80).min(text.len());
                let end = (end..=text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap();
                leaks.push(format!("{label} in {source}: …{}…", &text[start..end]));
            }
        }
    }
    let searched: usize = seen.0.iter().map(|(_, t)| t.len()).sum();
    eprintln!(
        "searched {} outputs ({searched} bytes) for {} secrets",
        seen.0.len(),
        setup.secrets.len() + oracles.len()
    );
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n\n")
    );
}

/// A rule URL that is a secret as a whole (`url = { env = "..." }`, e.g. a webhook URL whose
/// path is the credential) must not be shown in the actions a job or a dry run records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rule_url_path_is_not_shown_in_actions() {
    let mock = MockService::start(|_, _| MockReply::status(200)).await;
    let url = format!("{}/hook/{RULE_PATH}", mock.uri());
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[store]
path = "data/hookbridge.db"
[engine]
poll_interval_ms = 50
[admin]
token = "{ADMIN}"
[endpoints.github]
provider = "github"
secret = "{SECRET}"
[[rules]]
name = "secret-url"
action = {{ kind = "http", url = {{ env = "HB_SEC_RULE_URL" }} }}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(dir.path(), &config, &[("HB_SEC_RULE_URL", &url)]);
    let client = reqwest::Client::new();
    let r = github_post(
        &client,
        &server.url("/hooks/github"),
        "issues",
        "path-1",
        fixture("issues.opened.json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let seq = r.json::<serde_json::Value>().await.unwrap()["seq"]
        .as_i64()
        .unwrap();
    wait_until("the job applied", Duration::from_secs(15), || async {
        !mock.requests().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dry_run = client
        .post(server.url(&format!("/admin/deliveries/{seq}/dry-run")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let job = client
        .get(server.url("/admin/jobs/1"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.terminate();
    // The action is recorded, with its secret segment hidden.
    for (what, text) in [("dry run", &dry_run), ("job", &job)] {
        assert!(
            text.contains("POST 127.0.0.1/hook/\u{2026}"),
            "the action is not in the {what}: {text}"
        );
    }
    for (what, text) in [
        ("dry run", &dry_run),
        ("job", &job),
        ("log", &server.logs()),
    ] {
        assert!(
            !text.contains(RULE_PATH),
            "the secret URL path is in the {what}: {text}"
        );
    }
}
