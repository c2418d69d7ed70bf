//! End to end: the real `hookbridge` binary with a travis-chat integration from its
//! configuration file; Travis CI's public key served by a mock `/config`; Slack, Matrix and a
//! signed webhook as mock chat services. Travis notifications are sent as Travis sends them
//! (form-encoded `payload`, RSA-SHA1 `Signature`), and the messages each chat receives are
//! checked per route; routes are managed with `hookbridge routes` and the admin API, whose
//! answers never show a secret.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Server;
use hookbridge_core::Provider;
use hookbridge_providers::travis::{Travis, TravisOptions};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TRAVIS_PUBLIC: &str =
    include_str!("../../providers/samples/travis/TEST-ONLY-travis-public-key.spki.pem");
const TRAVIS_PRIVATE: &str =
    include_str!("../../providers/samples/travis/TEST-ONLY-travis-signing-key.pem");
const ADMIN: &str = "admin-token-travis-7c1f";
const SLACK_PATH: &str = "/services/T0/B0/SlackSecretPath";
const TEAM_SLACK_PATH: &str = "/services/T1/B1/TeamSecretPath";
const HOOK_SECRET: &str = "whsec_aG9va2JyaWRnZS10cmF2aXMtZTJlLXNlY3JldA==";
const ROUTE_SECRET: &str = "whsec_cm91dGUtb3duLXNpZ25pbmctc2VjcmV0LXh5eg==";

struct Rig {
    server: Server,
    http: reqwest::Client,
    signer: Travis,
    slack: MockServer,
    matrix: MockServer,
    hooks: MockServer,
    _travis_api: MockServer,
    jobs: usize,
}

fn config(api: &str, matrix: &str, hooks: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[admin]
token = "{ADMIN}"

[engine]
backoff_base_ms = 50

[endpoints.travis]
provider = "travis"
api_url = "{api}"

[connections.slack]
kind = "slack"
url = {{ env = "SLACK_URL" }}

[connections.matrix]
kind = "matrix"
homeserver = "{matrix}"
room_id = "!builds:example.org"
access_token = {{ env = "MATRIX_TOKEN" }}

[connections.hook]
kind = "webhook"
url = "{hooks}/ci"
secret = {{ env = "HOOK_SECRET" }}

[[integrations]]
name = "travis"
kind = "travis-chat"
endpoint = "travis"
targets = ["slack"]

[[integrations.routes]]
repo = "acme/*"

[[integrations.routes]]
repo = "acme/billing-service"
targets = ["matrix"]
events = ["failed", "broken", "still_failing"]
"#,
    )
}

impl Rig {
    async fn start(dir: &std::path::Path) -> Rig {
        let travis_api = MockServer::start().await;
        let key = json!({"config": {"notifications": {"webhook": {"public_key": TRAVIS_PUBLIC}}}});
        Mock::given(method("GET"))
            .and(path("/config"))
            .respond_with(ResponseTemplate::new(200).set_body_json(key))
            .mount(&travis_api)
            .await;
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&slack)
            .await;
        let matrix = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path_regex(
                "^/_matrix/client/v3/rooms/.+/send/m.room.message/.+$",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"event_id": "$1"})))
            .mount(&matrix)
            .await;
        let hooks = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&hooks)
            .await;
        let text = config(&travis_api.uri(), &matrix.uri(), &hooks.uri());
        let slack_url = format!("{}{SLACK_PATH}", slack.uri());
        let server = Server::start_with_env(
            dir,
            &text,
            &[
                ("SLACK_URL", &slack_url),
                ("MATRIX_TOKEN", "matrix-access-token"),
                ("HOOK_SECRET", HOOK_SECRET),
            ],
        );
        let options = TravisOptions {
            public_key: Some(TRAVIS_PUBLIC.to_owned()),
            ..Default::default()
        };
        let signer = Travis::new(vec![], options).unwrap().with_test_signing_key(
            hookbridge_providers::travis::parse_signing_key_pem(TRAVIS_PRIVATE).unwrap(),
        );
        let rig = Rig {
            server,
            http: reqwest::Client::new(),
            signer,
            slack,
            matrix,
            hooks,
            _travis_api: travis_api,
            jobs: 0,
        };
        // The key is fetched in the background at start: wait until the endpoint is ready.
        common::wait_until(
            "the Travis key to load",
            Duration::from_secs(10),
            || async {
                rig.http
                    .get(rig.server.url("/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
        rig
    }

    /// Sends `json` as Travis CI does, optionally tampering with it; the answer's status.
    async fn send(&self, json: &Value, signed: bool) -> u16 {
        let body = serde_json::to_vec(json).unwrap();
        let delivery = self
            .signer
            .sign("build", &body, "", time::OffsetDateTime::now_utc())
            .unwrap();
        let mut headers = delivery.headers;
        if !signed {
            headers.remove("signature");
        }
        self.http
            .post(self.server.url("/hooks/travis"))
            .headers(headers)
            .body(delivery.body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Sends a signed notification, checks it was accepted, waits for its job to finish;
    /// the job's last attempt.
    async fn notify(&mut self, json: &Value) -> Value {
        let status = self.send(json, true).await;
        assert!((200..300).contains(&status), "answered {status}");
        self.next_job().await
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.server.url(&format!("/admin{path}")))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn next_job(&mut self) -> Value {
        self.jobs += 1;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, list) = self
                .admin(reqwest::Method::GET, "/jobs?rule=travis&limit=100", None)
                .await;
            let jobs = list["jobs"].as_array().cloned().unwrap_or_default();
            let finished = jobs
                .iter()
                .all(|j| !matches!(j["state"].as_str(), Some("pending" | "running")));
            if jobs.len() >= self.jobs && finished {
                let newest = jobs.iter().max_by_key(|j| j["id"].as_i64()).unwrap();
                let (_, job) = self
                    .admin(
                        reqwest::Method::GET,
                        &format!("/jobs/{}", newest["id"]),
                        None,
                    )
                    .await;
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for job {}: {list}\n{}",
                self.jobs,
                self.server.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn slack(&self, path: &str) -> Vec<String> {
        texts(&self.slack, path, "/text").await
    }

    async fn matrix(&self) -> Vec<String> {
        texts(&self.matrix, "", "/body").await
    }

    fn routes(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
            .arg("routes")
            .args(args)
            .arg("--config")
            .arg(self.server.dir.join("hookbridge.toml"))
            .env("SLACK_URL", format!("{}{SLACK_PATH}", self.slack.uri()))
            .env("MATRIX_TOKEN", "matrix-access-token")
            .env("HOOK_SECRET", HOOK_SECRET)
            .envs(env.iter().copied())
            .env("HOOKBRIDGE_LOG", "warn")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// The JSON field at `pointer` of every request a mock received on a path starting with
/// `prefix`.
async fn texts(mock: &MockServer, prefix: &str, pointer: &str) -> Vec<String> {
    mock.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().starts_with(prefix))
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn sample(name: &str) -> Value {
    let path = format!(
        "{}/../providers/samples/travis/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn in_repo(mut json: Value, owner: &str, name: &str, id: u64) -> Value {
    json["repository"]["owner_name"] = owner.into();
    json["repository"]["name"] = name.into();
    json["id"] = id.into();
    json
}

fn actions(job: &Value) -> Vec<String> {
    job["attempts"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|a| a["actions"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn travis_notifications_reach_the_routed_chats() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::start(dir.path()).await;

    // Fixed: the default events of `acme/*` (slack); not in the matrix route's filter.
    let job = rig.notify(&sample("build.fixed")).await;
    assert_eq!(job["job"]["state"], "done", "{job}");
    let slack = rig.slack(SLACK_PATH).await;
    assert_eq!(slack.len(), 1);
    assert_eq!(
        slack[0],
        "[Travis CI] acme/billing-service #1187 (main) fixed · Grace Hopper: Fix flaky clock in retry test · https://app.travis-ci.com/github/acme/billing-service/builds/267005877"
    );
    assert!(rig.matrix().await.is_empty());

    // Broken: both routes want it.
    rig.notify(&sample("build.broken")).await;
    assert_eq!(rig.slack(SLACK_PATH).await.len(), 2);
    let matrix = rig.matrix().await;
    assert_eq!(matrix.len(), 1);
    assert!(
        matrix[0].starts_with("[Travis CI] acme/billing-service #1186 (main) broken"),
        "{}",
        matrix[0]
    );

    // Pending: no route wants it (default events leave it out).
    let job = rig.notify(&sample("build.pending")).await;
    assert_eq!(
        actions(&job),
        ["dropped: no route of acme/billing-service wants `pending`"]
    );

    // The same notification again (a replay): accepted, stored once, nothing sent again.
    assert!((200..300).contains(&rig.send(&sample("build.broken"), true).await));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.slack(SLACK_PATH).await.len(), 2);

    // A repository without routes: accepted (2xx), job done, recorded as dropped, no message.
    let job = rig
        .notify(&in_repo(sample("build.failed"), "octo", "tools", 900_001))
        .await;
    assert_eq!(job["job"]["state"], "done");
    assert_eq!(actions(&job), ["dropped: no route for octo/tools"]);

    // Unsigned, or signed over other bytes: refused, nothing stored, nothing sent.
    assert_eq!(
        rig.send(
            &in_repo(sample("build.failed"), "acme", "web", 900_002),
            false
        )
        .await,
        401
    );
    let body = serde_json::to_vec(&sample("build.failed")).unwrap();
    let mut forged = rig
        .signer
        .sign("build", &body, "", time::OffsetDateTime::now_utc())
        .unwrap();
    let tampered = String::from_utf8(forged.body.to_vec())
        .unwrap()
        .replace("1188", "1288");
    forged.body = tampered.into();
    let status = rig
        .http
        .post(rig.server.url("/hooks/travis"))
        .headers(forged.headers)
        .body(forged.body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.slack(SLACK_PATH).await.len(), 2);
    assert_eq!(rig.matrix().await.len(), 1);
    assert!(rig.hooks.received_requests().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_managed_by_cli_and_admin_api_and_secrets_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::start(dir.path()).await;
    let team_url = format!("{}{TEAM_SLACK_PATH}", rig.slack.uri());

    // CLI: a route to the signed webhook connection, failed builds only.
    let (ok, out, err) = rig.routes(
        &[
            "add",
            "--integration",
            "travis",
            "octo/tools",
            "hook",
            "--events",
            "failed",
        ],
        &[],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("added octo/tools"), "{out}");
    // A route with a Slack webhook of its own, read from the environment.
    let (ok, out, err) = rig.routes(
        &[
            "add",
            "octo/*",
            "team-slack",
            "--slack-url-env",
            "TEAM_SLACK_URL",
            "--events",
            "*",
        ],
        &[("TEAM_SLACK_URL", &team_url)],
    );
    assert!(ok, "{out}{err}");
    // Refused: an unknown target, an unknown event (exit 1, the reason named).
    let (ok, _, err) = rig.routes(&["add", "octo/x", "nowhere"], &[]);
    assert!(!ok && err.contains("nowhere"), "{err}");
    let (ok, _, err) = rig.routes(&["add", "octo/x", "slack", "--events", "sucess"], &[]);
    assert!(!ok && err.contains("sucess"), "{err}");

    let (ok, list, err) = rig.routes(&["list"], &[]);
    assert!(ok, "{err}");
    assert!(
        list.contains("octo/tools") && list.contains("team-slack") && list.contains("acme/*"),
        "{list}"
    );
    assert!(list.contains("slack webhook (URL hidden)"), "{list}");
    let (ok, json, _) = rig.routes(&["list", "--json"], &[]);
    assert!(ok);

    // Used at once by the running server: failed on octo/tools -> webhook + team slack.
    let job = rig
        .notify(&in_repo(sample("build.failed"), "octo", "tools", 910_001))
        .await;
    assert_eq!(job["job"]["state"], "done", "{job}");
    let hook = rig.hooks.received_requests().await.unwrap();
    assert_eq!(hook.len(), 1);
    assert!(hook[0].headers.get("webhook-signature").is_some(), "signed");
    let sent: Value = serde_json::from_slice(&hook[0].body).unwrap();
    assert!(
        sent["data"]["text"]
            .as_str()
            .unwrap()
            .contains("octo/tools #1188 (feature/ledger-export) failed")
    );
    assert_eq!(rig.slack(TEAM_SLACK_PATH).await.len(), 1);
    // Passed on octo/tools: only the `*` route.
    rig.notify(&in_repo(sample("build.passed"), "octo", "tools", 910_002))
        .await;
    assert_eq!(rig.hooks.received_requests().await.unwrap().len(), 1);
    assert_eq!(rig.slack(TEAM_SLACK_PATH).await.len(), 2);

    // Admin API: add a route with a webhook secret of its own; answers never carry it.
    let (status, added) = rig
        .admin(
            reqwest::Method::POST,
            "/integrations/travis/routes",
            Some(json!({
                "repo": "octo/app", "targets": ["app-hook"], "events": ["broken"],
                "webhook": {"url": format!("{}/app/in?key=route-url-token", rig.hooks.uri()), "secret": ROUTE_SECRET}
            })),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let (status, listed) = rig
        .admin(reqwest::Method::GET, "/integrations/travis/routes", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["routes"].as_array().unwrap().len(), 5, "{listed}");
    let (status, refused) = rig
        .admin(
            reqwest::Method::POST,
            "/integrations/travis/routes",
            Some(json!({"repo": "octo/app", "targets": ["slack"], "token": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let (status, _) = rig
        .admin(reqwest::Method::GET, "/integrations/nope/routes", None)
        .await;
    assert_eq!(status, 404);
    let (_, cli_list, _) = rig.routes(&["list"], &[]);
    let shown = format!("{added} {listed} {json} {list} {cli_list}");
    for secret in [
        ROUTE_SECRET,
        "route-url-token",
        TEAM_SLACK_PATH,
        "TeamSecretPath",
        SLACK_PATH,
        HOOK_SECRET,
    ] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    let broken = in_repo(sample("build.broken"), "octo", "app", 910_003);
    rig.notify(&broken).await;
    let app = texts(&rig.hooks, "/app/in", "/data/text").await;
    assert_eq!(app.len(), 1);

    // Defaults through the admin API: pending on acme now reaches the default target.
    let (status, defaults) = rig
        .admin(
            reqwest::Method::PUT,
            "/integrations/travis/routes/defaults",
            Some(json!({"events": ["pending", "failed"]})),
        )
        .await;
    assert_eq!(status, 200, "{defaults}");
    assert_eq!(defaults["events"], json!(["pending", "failed"]));
    rig.notify(&sample("build.pending")).await;
    let slack = rig.slack(SLACK_PATH).await;
    assert_eq!(slack.len(), 1);
    assert!(slack[0].contains("#1184 (main) pending"), "{}", slack[0]);
    let (ok, out, _) = rig.routes(&["defaults"], &[]);
    assert!(
        ok && out.contains("pending, failed") && out.contains("set at runtime"),
        "{out}"
    );
    let (ok, out, _) = rig.routes(&["defaults", "--reset"], &[]);
    assert!(ok && out.contains("from the configuration"), "{out}");

    // Removal: through the admin API and the CLI; configuration routes stay.
    let (status, _) = rig
        .admin(
            reqwest::Method::DELETE,
            "/integrations/travis/routes?repo=octo/app",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = rig
        .admin(
            reqwest::Method::DELETE,
            "/integrations/travis/routes?repo=octo/app",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (ok, out, _) = rig.routes(&["remove", "octo/tools", "hook"], &[]);
    assert!(ok && out.contains("removed octo/tools"), "{out}");
    let (ok, _, err) = rig.routes(&["remove", "acme/*"], &[]);
    assert!(!ok && err.contains("configuration"), "{err}");
    rig.notify(&in_repo(sample("build.failed"), "octo", "tools", 910_004))
        .await;
    assert_eq!(
        rig.hooks.received_requests().await.unwrap().len(),
        2,
        "only the app hook's earlier message"
    );
}
