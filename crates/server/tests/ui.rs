//! The dashboard (`/ui`) end to end, on the real `hookbridge` binary with seeded deliveries
//! and a dead letter (a rule calling a service that fails until told to succeed):
//!
//! - with plain HTTP: `/ui` does not exist without an admin token; without the session
//!   cookie every page redirects to the login page and every `POST` is refused; with a
//!   session, every `POST` without (or with a wrong) CSRF token is refused and changes
//!   nothing; a wrong token does not sign in;
//! - in Debian's headless Chromium through chromedriver (the W3C WebDriver HTTP API, spoken
//!   with reqwest): sign in, filter the deliveries, open one (signature redacted, body
//!   pretty-printed), dry-run the rules, replay the dead letter and see it succeed, sign out;
//!   screenshots of the main pages go to `docs/screenshots/`.
//!
//! No page, in either part, contains a configured secret. Without chromium and chromedriver
//! the browser part is skipped (saying so), unless `HOOKBRIDGE_REQUIRE_BROWSER=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{MockReply, MockService, SECRET, Server, fixture, github_post, wait_until};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "ui-admin-token-5d1f2e9a7c03";
const RULE_SECRET: &str = "rule-header-secret-8e4b1c77";
const OLD_SECRET: &str = "old-endpoint-secret-2b9e";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Every secret the configuration holds: none may appear on any page.
const SECRETS: &[&str] = &[SECRET, ADMIN_TOKEN, RULE_SECRET, OLD_SECRET];

fn config(mock: &str, admin: bool) -> String {
    let admin = if admin {
        "[admin]\ntoken = { env = \"HB_UI_TEST_ADMIN_TOKEN\" }\n"
    } else {
        ""
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[store]
kind = "sqlite"
path = "data/hookbridge.db"

{admin}
[engine]
max_attempts = 2
backoff_base_ms = 50
backoff_max_secs = 1
poll_interval_ms = 100

[endpoints.gh]
provider = "github"
secrets = ["{OLD_SECRET}", "{SECRET}"]

[endpoints.other]
provider = "github"
secret = "{SECRET}"

[[rules]]
name = "notify-issues"
action = {{ kind = "http", url = "{mock}/notify", headers = {{ authorization = {{ env = "HB_UI_TEST_RULE_SECRET" }} }} }}
[rules.when]
event = "issues.*"
"#
    )
}

const ENV: &[(&str, &str)] = &[
    ("HB_UI_TEST_ADMIN_TOKEN", ADMIN_TOKEN),
    ("HB_UI_TEST_RULE_SECRET", RULE_SECRET),
];

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} contains a configured secret"
        );
    }
}

/// A running server with seeded deliveries: on `gh`, an issue, a push and a ping; on
/// `other`, an issue. The two issues' jobs are dead letters: the service the rule calls
/// fails (503) until `healthy` is set.
struct Seeded {
    server: Server,
    mock: MockService,
    healthy: Arc<AtomicBool>,
    /// The issue on `gh`, and its dead job.
    issue_seq: i64,
    dead_job: i64,
    /// The dead job of the issue on `other`.
    other_dead_job: i64,
    _dir: tempfile::TempDir,
}

async fn admin_get(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    client
        .get(server.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn seeded() -> Seeded {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let mock = MockService::start(move |_, _| {
        MockReply::status(if flag.load(Ordering::SeqCst) {
            200
        } else {
            503
        })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(dir.path(), &config(&mock.uri(), true), ENV);
    let client = reqwest::Client::new();
    for (endpoint, event, id, sample) in [
        ("gh", "ping", "d-ping-1", "ping.json"),
        ("gh", "push", "d-push-1", "push.json"),
        ("other", "issues", "d-other-issue-1", "issues.opened.json"),
        ("gh", "issues", "d-issue-1", "issues.opened.json"),
    ] {
        let status = github_post(
            &client,
            &server.url(&format!("/hooks/{endpoint}")),
            event,
            id,
            fixture(sample),
        )
        .send()
        .await
        .unwrap()
        .status();
        assert_eq!(status, 202, "{endpoint} {id}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let page = admin_get(&client, &server, "/admin/dead-letters").await;
        let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
        if jobs.len() >= 2 {
            break jobs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the issues' jobs to be dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 2, "{dead:?}");
    let listed = admin_get(&client, &server, "/admin/deliveries?endpoint=gh").await;
    let issue_seq = listed["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["delivery_id"] == "d-issue-1")
        .and_then(|d| d["seq"].as_i64())
        .unwrap();
    let job_of = |on_issue: bool| {
        dead.iter()
            .find(|j| (j["delivery_seq"].as_i64() == Some(issue_seq)) == on_issue)
            .and_then(|j| j["id"].as_i64())
            .unwrap()
    };
    Seeded {
        dead_job: job_of(true),
        other_dead_job: job_of(false),
        server,
        mock,
        healthy,
        issue_seq,
        _dir: dir,
    }
}

// ---- plain HTTP ----

/// The session cookie's value in a response's `Set-Cookie` headers.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("hookbridge_ui="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .filter(|c| !c.is_empty())
}

/// The CSRF token of the first form on a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// Signs in without a browser; returns the session cookie.
async fn sign_in(client: &reqwest::Client, server: &Server, token: &str) -> reqwest::Response {
    let form = client.get(server.url("/ui/login")).send().await.unwrap();
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("hookbridge_ui_login="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("the login form sets its cookie");
    let csrf = csrf_of(&form.text().await.unwrap());
    client
        .post(server.url("/ui/login"))
        .header("cookie", login_cookie)
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn dashboard_over_plain_http() {
    let seeded = seeded().await;
    let server = &seeded.server;
    let (seq, job) = (seeded.issue_seq, seeded.dead_job);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let pages = [
        "/ui".to_owned(),
        "/ui/".to_owned(),
        "/ui/deliveries".to_owned(),
        "/ui/deliveries?event=issues&status=failed".to_owned(),
        format!("/ui/deliveries/{seq}"),
        "/ui/dead-letters".to_owned(),
        "/ui/rules".to_owned(),
        format!("/ui/rules?delivery={seq}"),
        "/ui/hooks".to_owned(),
        "/ui/links".to_owned(),
        "/ui/no-such-page".to_owned(),
    ];
    let posts = [
        format!("/ui/deliveries/{seq}/replay"),
        format!("/ui/jobs/{job}/replay"),
        "/ui/dead-letters/replay".to_owned(),
        "/ui/rules/dry-run".to_owned(),
        "/ui/logout".to_owned(),
    ];
    let bodies = |csrf: Option<&str>| {
        let mut form = vec![("job", job.to_string()), ("delivery", seq.to_string())];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf.to_owned()));
        }
        form
    };

    // Without a session: pages go to the login page, POSTs are refused.
    for page in &pages {
        let r = client.get(server.url(page)).send().await.unwrap();
        assert_eq!(r.status(), 303, "GET {page}");
        let location = r.headers()["location"].to_str().unwrap();
        assert!(
            location == "/ui/login" || location == "/ui",
            "GET {page} -> {location}"
        );
    }
    for path in &posts {
        let r = client
            .post(server.url(path))
            .form(&bodies(Some("made-up-token")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "POST {path} without a session");
        assert_no_secret(path, &r.text().await.unwrap());
    }
    // The login form itself refuses a POST without its token.
    let r = client
        .post(server.url("/ui/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(session_cookie(&r).is_none());

    // A wrong token does not sign in.
    let r = sign_in(&client, server, "not-the-admin-token-at-all").await;
    assert_eq!(r.status(), 401);
    assert!(session_cookie(&r).is_none());

    let r = sign_in(&client, server, ADMIN_TOKEN).await;
    assert_eq!(r.status(), 303);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let session = format!("hookbridge_ui={}", session_cookie(&r).unwrap());

    // With the session: every page renders, with no secret in it.
    let mut csrf = String::new();
    for page in &pages {
        let r = client
            .get(server.url(page))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if page == "/ui/" {
            assert_eq!(status, 303);
            continue;
        }
        let expected = if page.ends_with("no-such-page") {
            404
        } else {
            200
        };
        assert_eq!(status, expected, "GET {page}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        let html = r.text().await.unwrap();
        assert_no_secret(page, &html);
        csrf = csrf_of(&html);
    }
    // Every POST without the CSRF token, or with a wrong one, is refused.
    for path in &posts {
        for token in [None, Some(""), Some("not-the-token")] {
            let r = client
                .post(server.url(path))
                .header("cookie", &session)
                .form(&bodies(token))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "POST {path} with CSRF token {token:?}");
        }
    }
    // Nothing changed: the dead letter is still dead, and the session still works.
    let dead = admin_get(&client, server, "/admin/dead-letters").await;
    assert_eq!(dead["jobs"].as_array().unwrap().len(), 2, "{dead}");
    let r = client
        .get(server.url("/ui/dead-letters"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // With the token, a POST goes through: signing out ends the session.
    let r = client
        .post(server.url("/ui/logout"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = client
        .get(server.url("/ui/dead-letters"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the ended session no longer opens pages");

    let logs = server.logs() + &server.stdout();
    assert_no_secret("the server's logs", &logs);
    drop(seeded);

    // Without an admin token there is no dashboard at all.
    let dir = tempfile::tempdir().unwrap();
    let plain = Server::start_with_env(dir.path(), &config("http://127.0.0.1:9", false), ENV);
    for path in ["/ui", "/ui/", "/ui/login", "/ui/deliveries"] {
        let r = client.get(plain.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "GET {path} without an admin token");
    }
}

/// The hooks page reports each connection's hooks as the service lists them, shows a
/// service that fails or hangs in its own row without holding the page, and never shows a
/// connection's token. Behind an `https` public URL the session cookie is `Secure`.
#[tokio::test]
async fn dashboard_hooks_health() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    const GITHUB_TOKEN: &str = "ghp-ui-test-token-0a9b8c7d6e";
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/octo-repo/hooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "id": 7, "type": "Repository", "name": "web", "active": true, "events": ["issues"],
            "config": {"url": "https://hooks.example.com/hooks/gh", "content_type": "json"}
        }])))
        .mount(&github)
        .await;
    let hanging = MockService::start(|_, _| MockReply::Hang(Duration::from_secs(30))).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "https://hooks.example.com"

[store]
path = "data/hookbridge.db"

[admin]
token = {{ env = "HB_UI_TEST_ADMIN_TOKEN" }}

[endpoints.gh]
provider = "github"
secret = "{SECRET}"

[connections.gh]
kind = "github"
base_url = "{github}"
token = "{GITHUB_TOKEN}"

[connections.gh-down]
kind = "github"
base_url = "http://127.0.0.1:1"
token = "{GITHUB_TOKEN}"

[connections.gh-slow]
kind = "github"
base_url = "{slow}"
token = "{GITHUB_TOKEN}"

[[hooks]]
endpoint = "gh"
connection = "gh"
repository = "octo-org/octo-repo"
events = ["issues"]

[[hooks]]
endpoint = "gh"
connection = "gh-down"
repository = "octo-org/down"

[[hooks]]
endpoint = "gh"
connection = "gh-slow"
repository = "octo-org/slow"
"#,
        github = github.uri(),
        slow = hanging.uri(),
    );
    let server = Server::start_with_env(dir.path(), &text, ENV);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = sign_in(&client, &server, ADMIN_TOKEN).await;
    assert_eq!(r.status(), 303);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let session = format!("hookbridge_ui={}", session_cookie(&r).unwrap());

    let started = std::time::Instant::now();
    let page = client
        .get(server.url("/ui/hooks"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(took < Duration::from_secs(15), "the page took {took:?}");
    assert!(
        html.contains("github octo-org/octo-repo -&gt; https://hooks.example.com/hooks/gh"),
        "{html}"
    );
    assert!(
        html.contains(">ok<"),
        "the registered hook is healthy: {html}"
    );
    assert!(
        html.contains("no answer within 5 s"),
        "the hanging service times out in its row: {html}"
    );
    assert_eq!(
        html.matches("Could not check").count(),
        2,
        "the failing and the hanging connection each show their error: {html}"
    );
    assert!(!html.contains(GITHUB_TOKEN));
    assert_no_secret("hooks page", &html);
    // The report is kept: the services are not asked again at once.
    let asked = github.received_requests().await.unwrap().len();
    let again = client
        .get(server.url("/ui/hooks"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(github.received_requests().await.unwrap().len(), asked);
}

// ---- in a browser ----

/// Whether the browser part can run; without chromium it is skipped, saying so, unless
/// `HOOKBRIDGE_REQUIRE_BROWSER=1`.
fn browser_available() -> bool {
    let present = Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists();
    if !present {
        assert!(
            std::env::var("HOOKBRIDGE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "HOOKBRIDGE_REQUIRE_BROWSER=1 but {CHROMEDRIVER} or {CHROMIUM} is missing \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipping the browser part: {CHROMEDRIVER} or {CHROMIUM} is missing \
             (apt-get install chromium chromium-driver)"
        );
    }
    present
}

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(log: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        wait_until("chromedriver to be ready", Duration::from_secs(20), || {
            let request = client.get(format!("{}/status", driver.url)).send();
            async move {
                match request.await {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|v| v["value"]["ready"] == true),
                    Err(_) => false,
                }
            }
        })
        .await;
        driver
    }
}

/// A WebDriver session: just the commands this test needs.
struct Browser {
    http: reqwest::Client,
    base: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn open(driver: &Driver, profile: &Path) -> Browser {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                    "--window-size=1280,900", "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let answer: Value = http
            .post(format!("{}/session", driver.url))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"));
        Browser {
            base: format!("{}/session/{id}", driver.url),
            http,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            answer["value"].get("error").is_none(),
            "WebDriver {method} {path}: {answer}"
        );
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits for the page's URL to contain `part` (a click's navigation may still be on its
    /// way when the click command returns).
    async fn wait_for_url(&self, part: &str) -> String {
        let mut url = String::new();
        for _ in 0..100 {
            url = self.current_url().await;
            if url.contains(part) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser is at {url}, not at a URL containing {part:?}");
    }

    async fn source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("{found}"))
                    .to_owned()
            })
            .collect()
    }

    async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        assert!(!all.is_empty(), "no element matches {css:?}");
        all[0].clone()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.element_text(&element).await
    }

    async fn element_text(&self, element: &str) -> String {
        self.command(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
    }

    async fn resize(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let data = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(path, png).unwrap();
    }

    async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn dashboard_in_a_browser() {
    if !browser_available() {
        return;
    }
    let seeded = seeded().await;
    let server = &seeded.server;
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&profile.path().join("chromedriver.log")).await;
    let browser = Browser::open(&driver, &profile.path().join("profile")).await;
    let shots = screenshots_dir();
    let mut seen: Vec<(String, String)> = Vec::new();
    macro_rules! keep {
        ($what:expr) => {
            seen.push(($what.to_string(), browser.source().await))
        };
    }

    // Sign in: any page first sends the browser to the login page.
    browser.goto(&server.url("/ui/dead-letters")).await;
    browser.wait_for_url("/ui/login").await;
    keep!("login");
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("form.login button[type=submit]").await;
    // `/ui/login` contains `/ui` too: wait for the overview itself.
    let mut url = String::new();
    for _ in 0..100 {
        url = browser.current_url().await;
        if url.ends_with("/ui") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(url.ends_with("/ui"), "signed in: at {url}");
    keep!("overview");
    let overview = browser.text("main").await;
    assert!(overview.contains("dead letters"), "{overview}");
    assert!(
        overview.contains("4\ndeliveries in the last 24 h"),
        "{overview}"
    );
    browser.screenshot(&shots.join("overview.png")).await;

    // Filter the deliveries: issues only, then on `gh` only.
    browser.goto(&server.url("/ui/deliveries")).await;
    assert_eq!(browser.find_all("#deliveries tbody tr").await.len(), 4);
    browser.type_into("input[name=event]", "issues").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for_url("event=issues").await;
    let events = browser.find_all("#deliveries tbody td.event").await;
    assert_eq!(events.len(), 2, "two issues deliveries");
    for e in &events {
        assert_eq!(browser.element_text(e).await, "issues");
    }
    keep!("deliveries filtered by event");
    browser.screenshot(&shots.join("deliveries.png")).await;
    browser
        .click("select[name=endpoint] option[value=gh]")
        .await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for_url("endpoint=gh").await;
    let rows = browser.find_all("#deliveries tbody tr").await;
    assert_eq!(rows.len(), 1, "one issue on gh");
    assert!(browser.element_text(&rows[0]).await.contains("d-issue-1"));
    // Search by delivery id, and by subject.
    browser.goto(&server.url("/ui/deliveries?q=d-push-1")).await;
    let rows = browser.find_all("#deliveries tbody tr").await;
    assert_eq!(rows.len(), 1);
    assert!(browser.element_text(&rows[0]).await.contains("push"));
    browser
        .goto(&server.url("/ui/deliveries?q=octo-org%2Focto-repo%2312"))
        .await;
    let rows = browser.find_all("#deliveries tbody tr").await;
    assert_eq!(rows.len(), 2, "the jobs' subject finds both issues");
    browser
        .goto(&server.url("/ui/deliveries?endpoint=gh&q=octo-org%2Focto-repo%2312"))
        .await;
    let rows = browser.find_all("#deliveries tbody tr").await;
    assert_eq!(rows.len(), 1, "the gh issue");
    keep!("deliveries searched by subject");

    // Open the delivery: its signature is redacted, its body pretty-printed.
    browser.click("#deliveries tbody tr a").await;
    browser
        .wait_for_url(&format!("/ui/deliveries/{}", seeded.issue_seq))
        .await;
    let headers = browser.text("#headers").await;
    assert!(
        headers.contains("x-hub-signature-256 [redacted]"),
        "{headers}"
    );
    assert!(headers.contains("x-github-event issues"), "{headers}");
    let body = browser.text("#body").await;
    assert!(body.contains("\n  \"action\": \"opened\","), "{body}");
    let main = browser.text("main").await;
    assert!(main.contains("issues.opened"), "{main}");
    assert!(main.contains("notify-issues"), "{main}");
    assert!(main.contains("dead"), "{main}");
    assert!(main.contains("HTTP 503"), "{main}");
    assert!(main.contains("passes"), "re-verification: {main}");
    keep!("delivery");
    browser.screenshot(&shots.join("delivery.png")).await;

    // Dry-run the rules on it.
    browser
        .goto(&server.url(&format!("/ui/rules?delivery={}", seeded.issue_seq)))
        .await;
    browser.click("#dry-run").await;
    browser.wait_for_url("/ui/rules/dry-run").await;
    let report = browser.text("#dry-run-result").await;
    assert!(report.contains("notify-issues yes"), "{report}");
    keep!("dry run");

    // Replay the dead letters once the service is back, and see them succeed: the issue's
    // with its own button, the other with the bulk replay of the selected ones.
    browser.goto(&server.url("/ui/dead-letters")).await;
    assert_eq!(browser.find_all("#dead-letters tbody tr").await.len(), 2);
    keep!("dead letters");
    browser.screenshot(&shots.join("dead-letters.png")).await;
    seeded.healthy.store(true, Ordering::SeqCst);
    browser.click(&format!("#replay-{}", seeded.dead_job)).await;
    browser.wait_for_url("done=replayed").await;
    assert_eq!(browser.text("p.notice").await, "1 job is pending again.");
    let delivery_page = server.url(&format!("/ui/deliveries/{}", seeded.issue_seq));
    let mut state = String::new();
    for _ in 0..100 {
        browser.goto(&delivery_page).await;
        state = browser.text(".job .state").await;
        if state == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, "done", "the replayed job succeeded");
    keep!("delivery after the replay");
    browser.goto(&server.url("/ui/dead-letters")).await;
    assert_eq!(browser.find_all("#dead-letters tbody tr").await.len(), 1);
    browser
        .click(&format!(
            "#dead-letters input[type=checkbox][value='{}']",
            seeded.other_dead_job
        ))
        .await;
    browser.click("#replay-selected").await;
    browser.wait_for_url("done=replayed").await;
    assert_eq!(browser.text("p.notice").await, "1 job is pending again.");
    let mut empty = false;
    for _ in 0..100 {
        browser.goto(&server.url("/ui/dead-letters")).await;
        if !browser.find_all("#no-dead-letters").await.is_empty() {
            empty = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(empty, "no dead letters are left");
    wait_until(
        "both replays to reach the service",
        Duration::from_secs(20),
        || {
            let ok = seeded
                .mock
                .requests()
                .iter()
                .filter(|r| r.path == "/notify" && r.succeeded())
                .count();
            async move { ok >= 2 }
        },
    )
    .await;

    // Hooks and links render (none are configured here).
    for page in ["/ui/hooks", "/ui/links", "/ui/rules"] {
        browser.goto(&server.url(page)).await;
        keep!(page);
    }

    // Phone-sized: the pages still read, and the list fits.
    browser.resize(390, 844).await;
    browser.goto(&server.url("/ui/deliveries")).await;
    keep!("deliveries on a phone");
    browser
        .screenshot(&shots.join("deliveries-phone.png"))
        .await;
    browser.resize(1280, 900).await;

    // Sign out: the pages send the browser to the login page again.
    browser.goto(&server.url("/ui")).await;
    browser.click("header form button").await;
    browser.wait_for_url("/ui/login").await;
    browser.goto(&server.url("/ui/deliveries")).await;
    assert!(browser.current_url().await.ends_with("/ui/login"));

    for (what, html) in &seen {
        assert_no_secret(what, html);
    }
    browser.close().await;
    drop(driver);
}
