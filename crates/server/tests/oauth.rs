//! OAuth logins through a real `hookbridge serve` process, against wiremock authorization
//! servers: `/oauth/{connection}/login` redirects with a server-side `state` bound to a
//! cookie, `/callback` checks it, exchanges the code and stores the tokens encrypted.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::Server;
use hookbridge_server::oauth::{STATE_RULE, TokenKey, load_token};
use hookbridge_sync_engine::store::{SqliteOptions, SqliteStore, Store};
use sha2::Digest as _;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A test-only key: 32 bytes of 0x2a.
fn key_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode([0x2au8; 32])
}

/// Starts `hookbridge serve` with `env`; `Err(stderr)` if it exits before listening.
fn spawn(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> Result<Server, String> {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("hookbridge.toml");
    std::fs::write(&config, config_text).unwrap();
    let stderr_path = dir.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookbridge"));
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("HOOKBRIDGE_LOG", "debug")
        .env_remove("HOOKBRIDGE_TOKEN_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn hookbridge");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix("hookbridge listening on http://") {
                    break rest.parse().unwrap();
                }
            }
            _ => {
                let _ = child.wait();
                return Err(std::fs::read_to_string(&stderr_path).unwrap_or_default());
            }
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Server {
        child,
        addr,
        dir: dir.to_owned(),
        stderr: stderr_path,
    })
}

fn start(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> Server {
    let key = key_b64();
    let mut all = vec![("HOOKBRIDGE_TOKEN_KEY", key.as_str())];
    all.extend_from_slice(env);
    spawn(dir, config_text, &all).unwrap_or_else(|stderr| panic!("server failed: {stderr}"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Login {
    location: reqwest::Url,
    cookie: String,
    state: String,
}

async fn login(server: &Server, connection: &str) -> Login {
    let response = http()
        .get(server.url(&format!("/oauth/{connection}/login")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with(&format!("hookbridge_oauth_{connection}=")));
    let location: reqwest::Url = response.headers()["location"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let state = query(&location, "state").unwrap_or_default();
    Login {
        location,
        cookie,
        state,
    }
}

fn query(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn callback(
    server: &Server,
    connection: &str,
    cookie: Option<&str>,
    q: &str,
) -> (u16, String) {
    let mut request = http().get(server.url(&format!("/oauth/{connection}/callback?{q}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn enc(s: &str) -> String {
    url_encode(s)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every byte of the data directory (database, WAL) must be free of `needle`.
fn assert_not_on_disk(dir: &Path, needle: &str) {
    for entry in std::fs::read_dir(dir.join("data")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{} holds the token in clear",
            path.display()
        );
    }
}

async fn stored(dir: &Path, connection: &str) -> (SqliteStore, Option<(Vec<u8>, Option<Vec<u8>>)>) {
    let store = SqliteStore::open(dir.join("data/hookbridge.db"), SqliteOptions::default())
        .await
        .unwrap();
    let raw = store.token(connection).await.unwrap().map(|t| {
        (
            t.access_token.expose().to_vec(),
            t.refresh_token.map(|r| r.expose().to_vec()),
        )
    });
    (store, raw)
}

/// The whole refusal matrix and the happy path, for one connection whose token endpoint
/// is `token_mock` (expected to be called exactly once, by the good callback).
async fn run_state_checks(
    server: &Server,
    connection: &str,
    idp: &MockServer,
    token_path: &str,
) -> (Login, String) {
    // No cookie, no state.
    let (status, _) = callback(server, connection, None, "code=the-code").await;
    assert_eq!(status, 400);
    // A login, then a callback with the wrong state: refused, and the login is used up.
    let first = login(server, connection).await;
    let (status, _) = callback(
        server,
        connection,
        Some(&first.cookie),
        "code=the-code&state=forged",
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = callback(
        server,
        connection,
        Some(&first.cookie),
        &format!("code=the-code&state={}", enc(&first.state)),
    )
    .await;
    assert_eq!(status, 400, "a refused login must not be reusable");
    // The right state without the cookie (another browser): refused.
    let second = login(server, connection).await;
    let (status, _) = callback(
        server,
        connection,
        None,
        &format!("code=the-code&state={}", enc(&second.state)),
    )
    .await;
    assert_eq!(status, 400);
    // Missing state with the cookie: refused (and used up).
    let (status, _) = callback(server, connection, Some(&second.cookie), "code=the-code").await;
    assert_eq!(status, 400);
    assert_eq!(
        token_calls(idp, token_path).await,
        0,
        "nothing exchanged before a good callback"
    );
    // The good one.
    let good = login(server, connection).await;
    let (status, body) = callback(
        server,
        connection,
        Some(&good.cookie),
        &format!("code=the-code&state={}", enc(&good.state)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Replayed: refused.
    let (status, replay_body) = callback(
        server,
        connection,
        Some(&good.cookie),
        &format!("code=the-code&state={}", enc(&good.state)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(token_calls(idp, token_path).await, 1);
    (good, format!("{body}{replay_body}"))
}

async fn token_calls(idp: &MockServer, token_path: &str) -> usize {
    idp.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == token_path)
        .count()
}

async fn token_request_body(idp: &MockServer, token_path: &str) -> String {
    let requests = idp.received_requests().await.unwrap();
    let request = requests
        .iter()
        .find(|r| r.url.path() == token_path)
        .unwrap();
    String::from_utf8(request.body.clone()).unwrap()
}

async fn check_encrypted_at_rest(
    server: &mut Server,
    connection: &str,
    access: &str,
    refresh: Option<&str>,
    responses: &str,
) {
    assert!(server.terminate().success());
    for secret in std::iter::once(access).chain(refresh) {
        assert!(!server.logs().contains(secret), "token in the logs");
        assert!(!responses.contains(secret), "token in a response");
        assert_not_on_disk(&server.dir, secret);
    }
    let (store, raw) = stored(&server.dir, connection).await;
    let (raw_access, raw_refresh) = raw.expect("a token was stored");
    assert_ne!(raw_access, access.as_bytes());
    assert_eq!(raw_refresh.is_some(), refresh.is_some());
    let key = TokenKey::from_base64(&key_b64()).unwrap();
    let record = load_token(&store, connection, &key).await.unwrap().unwrap();
    assert_eq!(record.access_token.expose(), access.as_bytes());
    assert_eq!(
        record.refresh_token.as_ref().map(|t| t.expose().to_vec()),
        refresh.map(|r| r.as_bytes().to_vec())
    );
    // Another key cannot read it.
    let other = TokenKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([1u8; 32]))
        .unwrap();
    assert!(load_token(&store, connection, &other).await.is_err());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jira_oauth2_login_stores_encrypted_tokens_and_refuses_bad_state() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "JIRA-ACCESS-SECRET-1",
            "refresh_token": "JIRA-REFRESH-SECRET-1",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "read:jira-work offline_access"
        })))
        .mount(&idp)
        .await;
    Mock::given(method("GET"))
        .and(path("/oauth/token/accessible-resources"))
        .and(header("authorization", "Bearer JIRA-ACCESS-SECRET-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([
            {"id": "cloud-1", "url": "https://acme.atlassian.net", "name": "acme", "scopes": []}
        ])))
        .mount(&idp)
        .await;
    let idp_url = idp.uri();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{}
[connections.jira]
kind = "jira-oauth2"
client_id = "jira-client"
client_secret = {{ env = "TEST_JIRA_CLIENT_SECRET" }}
redirect_url = "http://127.0.0.1:9/oauth/jira/callback"
scopes = ["read:jira-work", "offline_access"]
auth_url = "{idp_url}/authorize"
token_url = "{idp_url}/oauth/token"
resources_url = "{idp_url}/oauth/token/accessible-resources"
"#,
        common::config("")
    );
    let mut server = start(
        dir.path(),
        &text,
        &[("TEST_JIRA_CLIENT_SECRET", "jira-client-secret")],
    );
    let (good, responses) = run_state_checks(&server, "jira", &idp, "/oauth/token").await;
    assert!(
        good.location
            .as_str()
            .starts_with(&format!("{idp_url}/authorize?"))
    );
    assert_eq!(
        query(&good.location, "client_id").as_deref(),
        Some("jira-client")
    );
    assert_eq!(
        query(&good.location, "redirect_uri").as_deref(),
        Some("http://127.0.0.1:9/oauth/jira/callback")
    );
    assert_eq!(
        query(&good.location, "response_type").as_deref(),
        Some("code")
    );
    assert_eq!(
        query(&good.location, "scope").as_deref(),
        Some("read:jira-work offline_access")
    );
    assert!(good.state.len() >= 16);
    let body = token_request_body(&idp, "/oauth/token").await;
    assert!(body.contains("client_id=jira-client"), "{body}");
    assert!(body.contains("client_secret=jira-client-secret"), "{body}");
    assert!(body.contains("redirect_uri="), "{body}");
    check_encrypted_at_rest(
        &mut server,
        "jira",
        "JIRA-ACCESS-SECRET-1",
        Some("JIRA-REFRESH-SECRET-1"),
        &responses,
    )
    .await;
    let (store, _) = stored(dir.path(), "jira").await;
    let resources = store.state(STATE_RULE, "jira/resources").await.unwrap();
    assert_eq!(resources.unwrap()[0]["id"], "cloud-1");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn asana_oauth_login_uses_pkce_and_stores_encrypted_tokens() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/-/oauth_token"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("code_verifier="))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "ASANA-ACCESS-SECRET-2",
            "refresh_token": "ASANA-REFRESH-SECRET-2",
            "token_type": "bearer",
            "expires_in": 3600,
            "data": {"gid": "42", "name": "Ann", "email": "ann@example.com"}
        })))
        .mount(&idp)
        .await;
    let idp_url = idp.uri();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{}
[connections.asana]
kind = "asana-oauth"
client_id = "asana-client"
client_secret = {{ env = "TEST_ASANA_CLIENT_SECRET" }}
redirect_url = "http://127.0.0.1:9/oauth/asana/callback"
scopes = ["tasks:read"]
auth_url = "{idp_url}/-/oauth_authorize"
token_url = "{idp_url}/-/oauth_token"
"#,
        common::config("")
    );
    let mut server = start(
        dir.path(),
        &text,
        &[("TEST_ASANA_CLIENT_SECRET", "asana-client-secret")],
    );
    let (good, responses) = run_state_checks(&server, "asana", &idp, "/-/oauth_token").await;
    assert!(
        good.location
            .as_str()
            .starts_with(&format!("{idp_url}/-/oauth_authorize?"))
    );
    assert_eq!(
        query(&good.location, "client_id").as_deref(),
        Some("asana-client")
    );
    assert_eq!(
        query(&good.location, "redirect_uri").as_deref(),
        Some("http://127.0.0.1:9/oauth/asana/callback")
    );
    assert_eq!(
        query(&good.location, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let challenge = query(&good.location, "code_challenge").unwrap();
    // The verifier sent with the code is the one behind the challenge of this login.
    let body = token_request_body(&idp, "/-/oauth_token").await;
    let verifier = body
        .split('&')
        .find_map(|p| p.strip_prefix("code_verifier="))
        .unwrap();
    let digest = sha2::Sha256::digest(verifier.as_bytes());
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        challenge
    );
    assert!(body.contains("client_id=asana-client"), "{body}");
    check_encrypted_at_rest(
        &mut server,
        "asana",
        "ASANA-ACCESS-SECRET-2",
        Some("ASANA-REFRESH-SECRET-2"),
        &responses,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn github_oauth_login_stores_encrypted_user_token() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login/oauth/access_token"))
        .and(header("accept", "application/json"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("client_secret=gh-client-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "gho_GITHUBACCESSSECRET3",
            "token_type": "bearer",
            "scope": "repo,read:org"
        })))
        .mount(&idp)
        .await;
    let idp_url = idp.uri();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{}
[connections.gh-user]
kind = "github-oauth"
client_id = "gh-client"
client_secret = {{ env = "TEST_GH_CLIENT_SECRET" }}
redirect_url = "http://127.0.0.1:9/oauth/gh-user/callback"
scopes = ["repo", "read:org"]
auth_url = "{idp_url}/login/oauth/authorize"
token_url = "{idp_url}/login/oauth/access_token"
"#,
        common::config("")
    );
    let mut server = start(
        dir.path(),
        &text,
        &[("TEST_GH_CLIENT_SECRET", "gh-client-secret")],
    );
    let (good, responses) =
        run_state_checks(&server, "gh-user", &idp, "/login/oauth/access_token").await;
    assert!(
        good.location
            .as_str()
            .starts_with(&format!("{idp_url}/login/oauth/authorize?"))
    );
    assert_eq!(
        query(&good.location, "client_id").as_deref(),
        Some("gh-client")
    );
    assert_eq!(
        query(&good.location, "scope").as_deref(),
        Some("repo read:org")
    );
    check_encrypted_at_rest(
        &mut server,
        "gh-user",
        "gho_GITHUBACCESSSECRET3",
        None,
        &responses,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jira_oauth1_login_exchanges_the_verifier() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/jira/plugins/servlet/oauth/request-token"))
        .and(header_contains_oauth_callback())
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "oauth_token=REQTOKEN1&oauth_token_secret=reqsecret&oauth_callback_confirmed=true",
        ))
        .mount(&idp)
        .await;
    Mock::given(method("POST"))
        .and(path("/jira/plugins/servlet/oauth/access-token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "oauth_token=JIRA1-ACCESS-SECRET-4&oauth_token_secret=accsecret&oauth_expires_in=157680000",
        ))
        .mount(&idp)
        .await;
    let idp_url = idp.uri();
    let key_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../providers/samples/github/TEST-ONLY-app-private-key.pem"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{}
[connections.jira-dc]
kind = "jira-oauth1"
base_url = "{idp_url}/jira"
consumer_key = "hookbridge"
private_key = {{ file = "{key_path}" }}
redirect_url = "http://127.0.0.1:9/oauth/jira-dc/callback"
"#,
        common::config("")
    );
    let mut server = start(dir.path(), &text, &[]);
    // A forged request token with a real cookie: refused, nothing exchanged.
    let first = login(&server, "jira-dc").await;
    assert_eq!(
        query(&first.location, "oauth_token").as_deref(),
        Some("REQTOKEN1")
    );
    assert!(
        first
            .location
            .as_str()
            .starts_with(&format!("{idp_url}/jira/plugins/servlet/oauth/authorize?"))
    );
    let (status, _) = callback(
        &server,
        "jira-dc",
        Some(&first.cookie),
        "oauth_token=OTHER&oauth_verifier=v",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        token_calls(&idp, "/jira/plugins/servlet/oauth/access-token").await,
        0
    );
    let good = login(&server, "jira-dc").await;
    let (status, body) = callback(
        &server,
        "jira-dc",
        Some(&good.cookie),
        "oauth_token=REQTOKEN1&oauth_verifier=VERIFIER9",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let requests = idp.received_requests().await.unwrap();
    let access = requests
        .iter()
        .find(|r| r.url.path() == "/jira/plugins/servlet/oauth/access-token")
        .unwrap();
    let authorization = access.headers["authorization"].to_str().unwrap();
    assert!(
        authorization.contains("oauth_verifier=\"VERIFIER9\""),
        "{authorization}"
    );
    assert!(
        authorization.contains("oauth_token=\"REQTOKEN1\""),
        "{authorization}"
    );
    assert!(authorization.contains("RSA-SHA1"), "{authorization}");
    check_encrypted_at_rest(&mut server, "jira-dc", "JIRA1-ACCESS-SECRET-4", None, &body).await;
}

fn header_contains_oauth_callback() -> impl wiremock::Match {
    struct HasCallback;
    impl wiremock::Match for HasCallback {
        fn matches(&self, request: &wiremock::Request) -> bool {
            request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("oauth_callback=\"http%3A%2F%2F127.0.0.1%3A9%2Foauth%2Fjira-dc%2Fcallback\""))
        }
    }
    HasCallback
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_connections_need_the_token_key_and_routes_exist_only_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{}
[connections.gh-user]
kind = "github-oauth"
client_id = "gh-client"
client_secret = "gh-client-secret"
redirect_url = "http://127.0.0.1:9/oauth/gh-user/callback"
"#,
        common::config("")
    );
    let stderr = match spawn(&dir.path().join("nokey"), &text, &[]) {
        Ok(_) => panic!("started without HOOKBRIDGE_TOKEN_KEY"),
        Err(stderr) => stderr,
    };
    assert!(stderr.contains("HOOKBRIDGE_TOKEN_KEY"), "{stderr}");
    let stderr = match spawn(
        &dir.path().join("shortkey"),
        &text,
        &[("HOOKBRIDGE_TOKEN_KEY", "c2hvcnQ=")],
    ) {
        Ok(_) => panic!("started with a short key"),
        Err(stderr) => stderr,
    };
    assert!(stderr.contains("32 bytes"), "{stderr}");
    // check-config says so too, and names a `login` that is not a login connection.
    let check = |text: &str, key: Option<&str>| {
        let path = dir.path().join("check.toml");
        std::fs::write(&path, text).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookbridge"));
        command
            .args(["check-config", "--config"])
            .arg(&path)
            .env_remove("HOOKBRIDGE_TOKEN_KEY");
        if let Some(key) = key {
            command.env("HOOKBRIDGE_TOKEN_KEY", key);
        }
        let out = command.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = check(&text, None);
    assert!(!ok && out.contains("HOOKBRIDGE_TOKEN_KEY"), "{out}");
    let (ok, out) = check(&text, Some(&key_b64()));
    assert!(ok, "{out}");
    assert!(
        out.contains("connection gh-user") && out.contains("kind=github-oauth"),
        "{out}"
    );
    let wrong = format!("{text}\n[connections.gh]\nkind = \"github\"\nlogin = \"nope\"\n");
    let (ok, out) = check(&wrong, Some(&key_b64()));
    assert!(
        !ok && out.contains("login = \"nope\": no such connection"),
        "{out}"
    );
    // Without OAuth connections there are no /oauth routes.
    let server = start(&dir.path().join("plain"), &common::config(""), &[]);
    let response = http()
        .get(server.url("/oauth/gh-user/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // With one, unknown connections are 404 too.
    let server = start(&dir.path().join("with"), &text, &[]);
    let response = http()
        .get(server.url("/oauth/nope/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn hooks_sync_ignores_oauth_login_connections() {
    use hookbridge_server::hooks::{HookPlan, HookSection, SyncMode};
    let text = format!(
        r#"{}
[connections.gh-user]
kind = "github-oauth"
client_id = "gh-client"
client_secret = "gh-client-secret"
redirect_url = "http://127.0.0.1:9/oauth/gh-user/callback"
"#,
        common::config("")
    );
    let config = hookbridge_server::Config::parse(&text, None, Path::new("/tmp")).unwrap();
    assert!(!format!("{config:?}").contains("gh-client-secret"));
    let secrets = Default::default();
    let clients = hookbridge_sync_engine::integrations::Connections::default();
    let plan = HookPlan {
        public_url: "https://hooks.example.com",
        connections: &config.connections,
        clients: &clients,
        hooks: &[],
        secrets: &secrets,
    };
    assert!(plan.run(SyncMode::default()).await.unwrap().is_empty());
    let hooks = [HookSection {
        endpoint: "gh".into(),
        connection: "gh-user".into(),
        repository: Some("o/r".into()),
        events: vec![],
        model: None,
        description: None,
        jql: None,
        workspace: None,
        resource: None,
        filters: vec![],
    }];
    let plan = HookPlan {
        hooks: &hooks,
        ..plan
    };
    let error = plan.run(SyncMode::default()).await.unwrap_err();
    assert!(error.contains("OAuth login connection"), "{error}");
}

/// A connection with `login = "<oauth connection>"` calls the API with the login's stored
/// tokens: an expired access token is refreshed first, the new pair is stored (encrypted) for
/// the next process, and without a login the call fails saying where to log in.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_connection_refreshes_and_stores_tokens_for_api_clients() {
    use hookbridge_sync_engine::store::TokenRecord;
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=JIRA-REFRESH-SECRET-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "JIRA-ACCESS-SECRET-2",
            "refresh_token": "JIRA-REFRESH-SECRET-2",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "manage:jira-webhook offline_access"
        })))
        .expect(1)
        .mount(&idp)
        .await;
    let jira = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ex/jira/cloud-1/rest/api/3/webhook"))
        .and(header("authorization", "Bearer JIRA-ACCESS-SECRET-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "startAt": 0, "maxResults": 100, "total": 0, "isLast": true, "values": []
        })))
        .mount(&jira)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let idp_url = idp.uri();
    let jira_url = jira.uri();
    let text = format!(
        r#"
[server]
public_url = "https://hooks.example.com"
[store]
path = "data/hookbridge.db"
[endpoints.jira]
provider = "jira"
secret = "jira-webhook-secret"
[connections.jira-login]
kind = "jira-oauth2"
client_id = "jira-client"
client_secret = "jira-client-secret"
redirect_url = "http://127.0.0.1:9/oauth/jira-login/callback"
token_url = "{idp_url}/oauth/token"
[connections.jira-api]
kind = "jira"
base_url = "{jira_url}/ex/jira/cloud-1"
deployment = "cloud"
login = "jira-login"
[[hooks]]
endpoint = "jira"
connection = "jira-api"
jql = "project = SUP"
"#
    );
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("hookbridge.toml"), &text).unwrap();
    let cli = || {
        Command::new(env!("CARGO_BIN_EXE_hookbridge"))
            .args(["hooks", "list", "--config", "hookbridge.toml"])
            .current_dir(dir.path())
            .env("HOOKBRIDGE_TOKEN_KEY", key_b64())
            .output()
            .unwrap()
    };
    // No login yet.
    let out = cli();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no login yet: open /oauth/jira-login/login"),
        "{stderr}"
    );
    // A login whose access token has expired.
    let key = TokenKey::from_base64(&key_b64()).unwrap();
    let (store, _) = stored(dir.path(), "jira-login").await;
    hookbridge_server::oauth::store_token(
        &store,
        "jira-login",
        &key,
        &TokenRecord {
            access_token: hookbridge_core::Secret::new("JIRA-ACCESS-SECRET-1"),
            refresh_token: Some(hookbridge_core::Secret::new("JIRA-REFRESH-SECRET-1")),
            expires_at: Some(time::OffsetDateTime::now_utc() - time::Duration::minutes(5)),
            scopes: "manage:jira-webhook offline_access".into(),
        },
    )
    .await
    .unwrap();
    store.close().await;
    let out = cli();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("created   jira [project = SUP] -> https://hooks.example.com/hooks/jira"),
        "{stdout}"
    );
    for secret in [
        "JIRA-ACCESS-SECRET",
        "JIRA-REFRESH-SECRET",
        "jira-client-secret",
    ] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    // The refreshed pair was stored, encrypted, for the next process.
    let (store, _) = stored(dir.path(), "jira-login").await;
    let record = load_token(&store, "jira-login", &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.access_token.expose(), b"JIRA-ACCESS-SECRET-2");
    assert_eq!(
        record.refresh_token.unwrap().expose(),
        b"JIRA-REFRESH-SECRET-2"
    );
    store.close().await;
    assert_not_on_disk(dir.path(), "JIRA-ACCESS-SECRET-2");
    idp.verify().await;
}
