//! The server on the PostgreSQL store (`[store] kind = "postgres"`), through the real binary.
//! Skipped without `HOOKBRIDGE_TEST_PG_URL` unless `HOOKBRIDGE_REQUIRE_PG=1`.

mod common;

use common::*;

fn pg_url() -> Option<String> {
    match std::env::var("HOOKBRIDGE_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("HOOKBRIDGE_REQUIRE_PG").as_deref() != Ok("1"),
                "HOOKBRIDGE_REQUIRE_PG=1 but HOOKBRIDGE_TEST_PG_URL is not set"
            );
            eprintln!("skipping: HOOKBRIDGE_TEST_PG_URL is not set");
            None
        }
    }
}

#[tokio::test]
async fn serves_and_dispatches_on_postgres() {
    let Some(url) = pg_url() else { return };
    let schema = format!("hb_server_test_{}", std::process::id());
    // The URL comes from the environment, as the docs recommend.
    // SAFETY: set before the child process starts; no other thread reads it.
    unsafe { std::env::set_var("HB_TEST_DATABASE_URL", &url) };
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[store]
kind = "postgres"
url = {{ env = "HB_TEST_DATABASE_URL" }}
schema = "{schema}"

[engine]
poll_interval_ms = 50

[endpoints.gh]
provider = "github"
secret = "{SECRET}"
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config);
    let client = reqwest::Client::new();
    let r = github_post(
        &client,
        &server.url("/hooks/gh"),
        "issues",
        "pg-1",
        fixture("issues.opened.json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let r = github_post(
        &client,
        &server.url("/hooks/gh"),
        "issues",
        "pg-1",
        fixture("issues.opened.json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.terminate();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(["deliveries", "list", "--config", "hookbridge.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("pg-1") && text.contains("issues.opened"),
        "{text}"
    );
    assert!(
        !server.logs().contains("postgres://"),
        "the database URL reached the logs"
    );

    // Drop the schema.
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
