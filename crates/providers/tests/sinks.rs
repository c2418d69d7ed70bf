//! The notification sinks against mock services answering as Slack's incoming webhooks
//! (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks), a
//! Matrix homeserver (https://spec.matrix.org/latest/client-server-api/) and a Standard
//! Webhooks receiver do.

use std::time::Duration;

use hookbridge_core::Secret;
use hookbridge_providers::api::{ApiError, RetryPolicy};
use hookbridge_providers::sinks::matrix::MatrixRoom;
use hookbridge_providers::sinks::slack::SlackWebhook;
use hookbridge_providers::sinks::{Message, Notifier, SinkOptions};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fast() -> SinkOptions {
    SinkOptions {
        retry: RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(5),
            max_wait: Duration::from_secs(2),
        },
        timeout: Duration::from_secs(5),
    }
}

fn message() -> Message {
    Message::new("job_01HV4Z2N7Q", "Build #42 of octo/app failed")
        .with_markdown("*Build #42* of `octo/app` failed")
        .with_field("Branch", "main")
        .with_url("https://app.travis-ci.com/github/octo/app/builds/4242")
}

// ---- Slack ----------------------------------------------------------------------------------

const SLACK_PATH: &str = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

fn slack(mock: &MockServer) -> SlackWebhook {
    SlackWebhook::with_options(Secret::new(format!("{}{SLACK_PATH}", mock.uri())), fast()).unwrap()
}

fn slack_error(status: u16, reason: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "text/plain")
        .set_body_string(reason)
}

#[tokio::test]
async fn slack_posts_text_and_blocks() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "text": "Build #42 of octo/app failed",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Build #42* of `octo/app` failed"}},
                {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Branch*\nmain"}]},
                {"type": "context", "elements": [{"type": "mrkdwn",
                    "text": "<https://app.travis-ci.com/github/octo/app/builds/4242|Open>"}]}
            ]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .and(body_json(json!({"text": "plain"})))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&mock)
        .await;
    let slack = slack(&mock);
    slack.notify(&message()).await.unwrap();
    slack.notify(&Message::new("k2", "plain")).await.unwrap();
}

#[tokio::test]
async fn slack_documented_errors_are_typed_without_the_url() {
    let mock = MockServer::start().await;
    let cases = [
        ("invalid", slack_error(400, "invalid_payload")),
        ("notext", slack_error(400, "no_text")),
        ("prohibited", slack_error(403, "action_prohibited")),
        ("nochannel", slack_error(404, "channel_not_found")),
        ("archived", slack_error(410, "channel_is_archived")),
    ];
    for (name, answer) in cases {
        Mock::given(method("POST"))
            .and(path(format!("/services/T0/B0/{name}")))
            .respond_with(answer)
            .expect(1)
            .mount(&mock)
            .await;
    }
    let notify = |name: &str| {
        let url = format!("{}/services/T0/B0/{name}", mock.uri());
        async move {
            SlackWebhook::with_options(Secret::new(url), fast())
                .unwrap()
                .notify(&Message::new("k", "text"))
                .await
                .unwrap_err()
        }
    };
    for reason in ["invalid_payload", "no_text"] {
        let name = if reason == "invalid_payload" {
            "invalid"
        } else {
            "notext"
        };
        let e = notify(name).await;
        assert!(
            matches!(e, ApiError::Validation { status: 400, .. }) && e.to_string().contains(reason),
            "{e}"
        );
        assert!(!e.is_transient());
        assert!(!e.to_string().contains("/services/"), "{e}");
    }
    let e = notify("prohibited").await;
    assert!(
        matches!(e, ApiError::Forbidden { .. }) && e.to_string().contains("action_prohibited"),
        "{e}"
    );
    let e = notify("nochannel").await;
    assert!(
        e.is_not_found() && e.to_string().contains("channel_not_found"),
        "{e}"
    );
    let e = notify("archived").await;
    assert!(
        e.is_not_found() && e.to_string().contains("channel_is_archived"),
        "{e}"
    );
}

#[tokio::test]
async fn slack_retries_server_errors_and_reports_rate_limits() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(slack_error(500, "rollup_error"))
        .up_to_n_times(2)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&mock)
        .await;
    slack(&mock).notify(&message()).await.unwrap();
    assert_eq!(mock.received_requests().await.unwrap().len(), 3);

    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_string("rate_limited"),
        )
        .mount(&mock)
        .await;
    let e = slack(&mock).notify(&message()).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    assert!(e.is_transient());

    // Still failing after the attempts: a transient server error.
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(slack_error(500, "rollup_error"))
        .mount(&mock)
        .await;
    let e = slack(&mock).notify(&message()).await.unwrap_err();
    assert!(
        matches!(e, ApiError::Server { status: 500, .. }) && e.is_transient(),
        "{e}"
    );
    assert!(!e.to_string().contains("XXXXXXXX"), "{e}");
}

#[tokio::test]
async fn slack_follows_no_redirect() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/steal", elsewhere.uri())),
        )
        .mount(&mock)
        .await;
    assert!(slack(&mock).notify(&message()).await.is_err());
}

// ---- Matrix ---------------------------------------------------------------------------------

const MATRIX_TOKEN: &str = "syt_Ym90_cXVpZXRseQ_0a1B2c";

fn matrix(mock: &MockServer) -> MatrixRoom {
    MatrixRoom::with_options(
        &mock.uri(),
        "!636q39766251:example.com",
        Secret::new(MATRIX_TOKEN),
        fast(),
    )
    .unwrap()
}

const MATRIX_PATH: &str =
    "/_matrix/client/v3/rooms/%21636q39766251%3Aexample.com/send/m.room.message/job_01HV4Z2N7Q";

#[tokio::test]
async fn matrix_sends_an_html_message_with_the_callers_txn_id() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(MATRIX_PATH))
        .and(header("authorization", format!("Bearer {MATRIX_TOKEN}").as_str()))
        .and(body_json(json!({
            "msgtype": "m.text",
            "body": "Build #42 of octo/app failed\nBranch: main\nhttps://app.travis-ci.com/github/octo/app/builds/4242",
            "format": "org.matrix.custom.html",
            "formatted_body": "Build #42 of octo/app failed<ul><li><strong>Branch</strong>: main</li></ul><p><a href=\"https://app.travis-ci.com/github/octo/app/builds/4242\">https://app.travis-ci.com/github/octo/app/builds/4242</a></p>"
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"event_id": "$YUwRidLecu:example.com"})),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let event = matrix(&mock).send(&message()).await.unwrap();
    assert_eq!(event, "$YUwRidLecu:example.com");
}

#[tokio::test]
async fn matrix_retries_with_the_same_txn_id() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path(MATRIX_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"event_id": "$YUwRidLecu:example.com"})),
        )
        .mount(&mock)
        .await;
    let room = matrix(&mock);
    room.notify(&message()).await.unwrap();
    // Retried by the engine later: same transaction id again.
    room.notify(&message()).await.unwrap();
    let requests = mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.url.path() == MATRIX_PATH));
}

#[tokio::test]
async fn matrix_errors_are_typed() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(
            "/_matrix/client/v3/rooms/%21636q39766251%3Aexample.com/send/m.room.message/forbidden",
        ))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "errcode": "M_FORBIDDEN",
            "error": "User @bot:example.com not in room !636q39766251:example.com"
        })))
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path(
            "/_matrix/client/v3/rooms/%21636q39766251%3Aexample.com/send/m.room.message/limited",
        ))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "20")
                .set_body_json(json!({
                    "errcode": "M_LIMIT_EXCEEDED",
                    "error": "Too many requests",
                    "retry_after_ms": 20000
                })),
        )
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path(
            "/_matrix/client/v3/rooms/%21636q39766251%3Aexample.com/send/m.room.message/token",
        ))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "errcode": "M_UNKNOWN_TOKEN",
            "error": "Invalid access token passed.",
            "soft_logout": false
        })))
        .mount(&mock)
        .await;
    let room = matrix(&mock);
    let e = room
        .notify(&Message::new("forbidden", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Forbidden { .. }) && e.to_string().contains("not in room"),
        "{e}"
    );
    let e = room
        .notify(&Message::new("limited", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(20)));
    let e = room.notify(&Message::new("token", "x")).await.unwrap_err();
    assert!(matches!(e, ApiError::Unauthorized { .. }), "{e}");
    assert!(!e.to_string().contains(MATRIX_TOKEN), "{e}");
    // No idempotency key, no request.
    let before = mock.received_requests().await.unwrap().len();
    let e = room.notify(&Message::new("", "x")).await.unwrap_err();
    assert!(matches!(e, ApiError::Config { .. }), "{e}");
    assert_eq!(mock.received_requests().await.unwrap().len(), before);
}

// ---- signed webhook -------------------------------------------------------------------------

#[cfg(feature = "standard-webhooks")]
mod signed {
    use super::*;
    use hookbridge_core::{Provider, RawDelivery};
    use hookbridge_providers::sinks::webhook::SignedWebhook;
    use hookbridge_providers::standard_webhooks::{StandardWebhooks, StandardWebhooksOptions};
    use wiremock::Request;

    // Secrets in the spec's format (the Standard Webhooks and Svix test keys).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OLD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn verifier(secret: &str) -> StandardWebhooks {
        StandardWebhooks::new(
            vec![Secret::new(secret)],
            StandardWebhooksOptions::default(),
        )
        .unwrap()
    }

    fn raw(request: &Request) -> RawDelivery {
        RawDelivery::new("receiver", request.headers.clone(), request.body.clone())
    }

    #[tokio::test]
    async fn signed_webhooks_verify_with_the_standard_webhooks_verifier() {
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hooks/notify"))
            .and(header("content-type", "application/json"))
            .and(header("webhook-id", "job_01HV4Z2N7Q"))
            .and(body_json(
                json!({"type": "hookbridge.notification", "data": {
                    "text": "Build #42 of octo/app failed",
                    "markdown": "*Build #42* of `octo/app` failed",
                    "fields": [{"name": "Branch", "value": "main"}],
                    "url": "https://app.travis-ci.com/github/octo/app/builds/4242"
                }}),
            ))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&mock)
            .await;
        let hook = SignedWebhook::with_options(
            &format!("{}/hooks/notify", mock.uri()),
            vec![Secret::new(SECRET)],
            fast(),
        )
        .unwrap();
        hook.notify(&message()).await.unwrap();
        let requests = mock.received_requests().await.unwrap();
        let delivery = raw(&requests[0]);
        let signature = delivery.headers["webhook-signature"].to_str().unwrap();
        assert!(signature.starts_with("v1,"), "{signature}");
        let timestamp: i64 = delivery.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((time::OffsetDateTime::now_utc().unix_timestamp() - timestamp).abs() < 60);
        let receiver = verifier(SECRET);
        receiver.verify(&delivery).unwrap();
        let event = receiver.parse(&delivery).unwrap();
        assert_eq!(event.name().as_str(), "hookbridge.notification");
        assert_eq!(event.delivery_id().as_str(), "job_01HV4Z2N7Q");
        // A wrong key or a changed body does not verify.
        assert!(verifier(OLD_SECRET).verify(&delivery).is_err());
        let mut tampered = delivery.clone();
        tampered.body =
            bytes::Bytes::from_static(br#"{"type":"hookbridge.notification","data":{}}"#);
        assert!(receiver.verify(&tampered).is_err());
    }

    #[tokio::test]
    async fn every_secret_signs_while_rotating() {
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&mock)
            .await;
        let hook = SignedWebhook::with_options(
            &format!("{}/in?token=abc", mock.uri()),
            vec![Secret::new(SECRET), Secret::new(OLD_SECRET)],
            fast(),
        )
        .unwrap();
        hook.notify(&message()).await.unwrap();
        let requests = mock.received_requests().await.unwrap();
        assert_eq!(requests[0].url.query(), Some("token=abc"));
        let delivery = raw(&requests[0]);
        let signatures = delivery.headers["webhook-signature"].to_str().unwrap();
        assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
        // A receiver that still knows only the old secret accepts it.
        verifier(OLD_SECRET).verify(&delivery).unwrap();
        verifier(SECRET).verify(&delivery).unwrap();
    }

    #[tokio::test]
    async fn signed_webhooks_retry_server_errors_with_the_same_id() {
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .mount(&mock)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&mock)
            .await;
        let hook = SignedWebhook::with_options(
            &format!("{}/hooks/notify", mock.uri()),
            vec![Secret::new(SECRET)],
            fast(),
        )
        .unwrap();
        // A key with a `.` becomes a stable digest id.
        let message = Message::new("travis:build/4242.failed", "Build failed");
        hook.notify(&message).await.unwrap();
        let requests = mock.received_requests().await.unwrap();
        assert_eq!(requests.len(), 3);
        let ids: Vec<_> = requests
            .iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
            .collect();
        assert!(
            ids.iter().all(|id| *id == ids[0] && id.starts_with("msg_")),
            "{ids:?}"
        );
        assert_eq!(ids[0], SignedWebhook::webhook_id(&message).unwrap());
        for request in &requests {
            verifier(SECRET).verify(&raw(request)).unwrap();
        }

        // Failing throughout: a transient error after the attempts.
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
            .mount(&mock)
            .await;
        let hook = SignedWebhook::with_options(
            &format!("{}/hooks/notify", mock.uri()),
            vec![Secret::new(SECRET)],
            fast(),
        )
        .unwrap();
        let e = hook.notify(&message).await.unwrap_err();
        assert!(
            matches!(e, ApiError::Server { status: 500, .. }) && e.is_transient(),
            "{e}"
        );
        assert!(!e.to_string().contains("MfKQ9r8"), "{e}");
    }
}
