//! The `hookbridge` subcommands, run as a user would.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn hookbridge(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(args)
        .current_dir(cwd)
        .env_remove("HOOKBRIDGE_CONFIG")
        .env("HOOKBRIDGE_TEST_SECRET", SECRET)
        .output()
        .expect("run hookbridge")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixtures_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../providers/samples/github")
}

#[test]
fn inspect_types_every_github_fixture() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue; // keys for the API client's tests live beside the samples
        }
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let expected_name = file.trim_end_matches(".json");
        let event = expected_name.split('.').next().unwrap();
        let out = hookbridge(
            &[
                "inspect",
                "--body",
                path.to_str().unwrap(),
                "-H",
                &format!("X-GitHub-Event: {event}"),
                "-H",
                "X-GitHub-Delivery: 0b989ba4-242f-11e5-81e1-c7b6966d2516",
            ],
            Path::new("."),
        );
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["provider"], "github", "{file}");
        assert_eq!(json["event"], expected_name, "{file}");
        assert_eq!(json["delivery_id"], "0b989ba4-242f-11e5-81e1-c7b6966d2516");
        assert!(json["subject"].is_string(), "{file}: no subject");
        // Typed, not kept as untyped.
        assert_ne!(
            json["payload"]["event"], "untyped",
            "{file}: {}",
            json["payload"]
        );
        assert_eq!(json["payload"]["event"], event, "{file}");
        if event != "installation" && event != "installation_repositories" {
            assert!(json["actor"]["name"].is_string(), "{file}: no actor");
        }
        seen += 1;
    }
    assert!(seen >= 16, "only {seen} fixtures");
}

#[test]
fn inspect_keeps_unknown_events_and_rejects_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        r#"{"action":"created","sponsorship":{"tier":"gold"},"sender":{"login":"octocat","id":1}}"#,
    )
    .unwrap();
    let out = hookbridge(
        &[
            "inspect",
            "--body",
            body.to_str().unwrap(),
            "-H",
            "X-GitHub-Event: sponsorship",
            "-H",
            "X-GitHub-Delivery: 1",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["event"], "sponsorship.created");
    assert_eq!(
        json["payload"]["payload"]["payload"]["sponsorship"]["tier"], "gold",
        "{json}"
    );
    assert_eq!(
        json["actor"]["name"], "octocat",
        "untyped events keep their actor"
    );

    std::fs::write(&body, "{\"action\":").unwrap();
    let out = hookbridge(
        &[
            "inspect",
            "--body",
            body.to_str().unwrap(),
            "-H",
            "X-GitHub-Event: issues",
            "-H",
            "X-GitHub-Delivery: 1",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("malformed"), "{}", stderr(&out));
}

#[test]
fn verify_says_ok_or_exactly_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("body.json");
    let body = fixture("issues.opened.json");
    std::fs::write(&body_path, &body).unwrap();
    let headers = dir.path().join("headers.txt");
    std::fs::write(
        &headers,
        format!(
            "Content-Type: application/json\nX-GitHub-Event: issues\nX-GitHub-Delivery: 1\nX-Hub-Signature-256: {}\n",
            sign256(SECRET, &body)
        ),
    )
    .unwrap();
    let base = [
        "verify",
        "--body",
        body_path.to_str().unwrap(),
        "--headers-file",
        headers.to_str().unwrap(),
    ];

    let out = hookbridge(
        &[
            &base[..],
            &[
                "--provider",
                "github",
                "--secret-env",
                "HOOKBRIDGE_TEST_SECRET",
            ],
        ]
        .concat(),
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "ok: x-hub-signature-256 matches secret #1"
    );

    // Through a config endpoint with two secrets: the second matches.
    std::fs::write(dir.path().join("hookbridge.toml"), config("")).unwrap();
    let out = hookbridge(
        &[
            &base[..],
            &["--endpoint", "gh", "--config", "hookbridge.toml"],
        ]
        .concat(),
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("secret #2"));

    // One byte changed: the exact reason, exit 1.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    std::fs::write(&body_path, &tampered).unwrap();
    let out = hookbridge(
        &[
            &base[..],
            &[
                "--provider",
                "github",
                "--secret-env",
                "HOOKBRIDGE_TEST_SECRET",
            ],
        ]
        .concat(),
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid: signature in x-hub-signature-256 is invalid: signature does not match any of the 1 configured secret(s)"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(SECRET));

    // Missing header.
    let out = hookbridge(
        &[
            "verify",
            "--body",
            body_path.to_str().unwrap(),
            "--provider",
            "github",
            "--secret-env",
            "HOOKBRIDGE_TEST_SECRET",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing signature header x-hub-signature-256"));

    // Unset secret variable: a usage error, exit 2.
    let out = hookbridge(
        &[
            &base[..],
            &[
                "--provider",
                "github",
                "--secret-env",
                "HOOKBRIDGE_NOT_SET_ANYWHERE",
            ],
        ]
        .concat(),
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_config_reports_endpoints_or_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookbridge.toml");
    std::fs::write(&path, config("")).unwrap();
    let out = hookbridge(
        &["check-config", "--config", path.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("is valid"));
    assert!(
        text.contains("endpoint gh") && text.contains("provider=github"),
        "{text}"
    );
    assert!(!text.contains(SECRET));

    std::fs::write(
        &path,
        "[endpoints.gh]\nprovider = \"github\"\nsecret = { env = \"HOOKBRIDGE_UNSET_VAR\" }\n",
    )
    .unwrap();
    let out = hookbridge(
        &["check-config", "--config", path.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "endpoint \"gh\": secret #1: environment variable HOOKBRIDGE_UNSET_VAR is not set"
        ),
        "{}",
        stderr(&out)
    );

    let out = hookbridge(
        &["check-config", "--config", "does-not-exist.toml"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read config file"));
}

#[tokio::test]
async fn deliveries_list_and_show_read_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config(""));
    let client = reqwest::Client::new();
    for (event, id, file) in [
        ("issues", "d-a", "issues.opened.json"),
        ("push", "d-b", "push.json"),
    ] {
        let r = github_post(&client, &server.url("/hooks/gh"), event, id, fixture(file))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    server.terminate();

    let out = hookbridge(
        &["deliveries", "list", "--config", "hookbridge.toml"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("issues.opened") && text.contains("d-a"),
        "{text}"
    );
    assert!(text.contains("push") && text.contains("d-b"), "{text}");
    assert!(
        text.find("d-b").unwrap() < text.find("d-a").unwrap(),
        "newest first"
    );

    let out = hookbridge(
        &[
            "deliveries",
            "list",
            "--json",
            "--endpoint",
            "gh",
            "--limit",
            "1",
            "--config",
            "hookbridge.toml",
        ],
        dir.path(),
    );
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["delivery_id"], "d-b");

    let out = hookbridge(
        &["deliveries", "show", "d-a", "--config", "hookbridge.toml"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("event:     issues.opened"), "{text}");
    assert!(text.contains("x-github-delivery: d-a"), "{text}");
    assert!(text.contains("\"action\": \"opened\""), "{text}");

    let out = hookbridge(
        &["deliveries", "show", "nope", "--config", "hookbridge.toml"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn serve_without_config_uses_the_dev_config_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("HOOKBRIDGE_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        line.starts_with("hookbridge listening on http://127.0.0.1:"),
        "{line}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let logs = stderr(&out);
    assert!(
        logs.contains("built-in development configuration"),
        "{logs}"
    );
    assert!(dir.path().join("hookbridge-data/hookbridge.db").exists());
}

#[test]
fn send_signs_a_sample_and_the_server_stores_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(""));
    let to = server.url("/hooks/gh");
    let signer = [
        "--provider",
        "github",
        "--secret-env",
        "HOOKBRIDGE_TEST_SECRET",
    ];

    let out = hookbridge(&[&["send"][..], &signer].concat(), dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("issues.opened") && stdout(&out).contains("workflow_run.completed")
    );

    let out = hookbridge(
        &[
            &[
                "send",
                "--event",
                "pull_request.opened",
                "--to",
                &to,
                "--delivery-id",
                "sent-1",
            ][..],
            &signer,
        ]
        .concat(),
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("202 Accepted"), "{}", stdout(&out));

    // Through the endpoint's own config, a second time: a duplicate, still 2xx.
    let out = hookbridge(
        &[
            "send",
            "--event",
            "pull_request.opened",
            "--to",
            &to,
            "--delivery-id",
            "sent-1",
            "--endpoint",
            "gh",
            "--config",
            "hookbridge.toml",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("duplicate"), "{}", stdout(&out));

    // A wrong secret: the server's 401 is reported, exit 1.
    let out = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args([
            "send",
            "--event",
            "ping",
            "--to",
            &to,
            "--provider",
            "github",
            "--secret-env",
            "WRONG",
        ])
        .env("WRONG", "not-the-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("401"), "{}", stdout(&out));

    let out = hookbridge(
        &[&["send", "--event", "no.such", "--to", &to][..], &signer].concat(),
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));

    let out = hookbridge(
        &[
            "deliveries",
            "show",
            "sent-1",
            "--config",
            "hookbridge.toml",
        ],
        dir.path(),
    );
    assert!(
        stdout(&out).contains("event:     pull_request.opened"),
        "{}",
        stdout(&out)
    );
}
