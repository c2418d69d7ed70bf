#![cfg(feature = "trello")]
//! The Trello REST client against a mock Trello. Bodies follow the REST reference
//! (<https://developer.atlassian.com/cloud/trello/rest/api-group-webhooks/>,
//! `api-group-tokens/`, `api-group-cards/`): its Webhook example
//! (`{"id", "description", "idModel", "callbackURL", "active", "consecutiveFailures",
//! "firstConsecutiveFailDate"}`), its Card example (trimmed) and comment actions as
//! `GET /1/cards/{id}/actions` returns them.

use std::time::Duration;

use futures_util::TryStreamExt;
use hookbridge_providers::api::{ApiError, RetryPolicy};
use hookbridge_providers::trello::auth::TrelloCredentials;
use hookbridge_providers::trello::client::{
    CardUpdate, CommentChange, DesiredWebhook, Due, NewWebhook, TrelloClient, TrelloSettings,
    WebhookUpdate,
};
use hookbridge_providers::trello::events::ActionType;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const KEY: &str = "0471642aefef5fa1fa76530ce1ba4c85";
const TOKEN: &str = "9eb76d9a9d02b8dd40c2f3e5df18556c831d4d1fadbe2c45f8310e6c93b5c548";
const CALLBACK: &str = "https://hooks.example.com/hooks/trello";
const BOARD: &str = "5abbe4b7ddc1b351ef961415";
const CARD: &str = "5abbe4b7ddc1b351ef961414";
const BOT: &str = "5a1b2c3d4e5f60718293a4b5";

fn settings(base: String) -> TrelloSettings {
    let mut settings = TrelloSettings::new(TrelloCredentials::new(KEY, TOKEN)).base_url(base);
    settings.retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(5),
        max_wait: Duration::from_secs(2),
    };
    settings
}

fn client(server: &MockServer) -> TrelloClient {
    TrelloClient::from_settings(settings(format!("{}/1", server.uri()))).unwrap()
}

/// A request with the credentials in the query.
fn given(verb: &str, at: &str) -> MockBuilder {
    Mock::given(method(verb))
        .and(path(at))
        .and(query_param("key", KEY))
        .and(query_param("token", TOKEN))
}

fn webhook(id: &str, callback: &str, model: &str, active: bool, failures: u64) -> Value {
    json!({
        "id": id,
        "description": "Board Webhook",
        "idModel": model,
        "callbackURL": callback,
        "active": active,
        "consecutiveFailures": failures,
        "firstConsecutiveFailDate": if failures > 0 { json!("2024-05-17T09:21:03.512Z") } else { Value::Null }
    })
}

fn card(list: &str, closed: bool) -> Value {
    json!({
        "id": CARD,
        "badges": {"votes": 0, "viewingMemberVoted": false, "subscribed": false, "checkItems": 0,
            "checkItemsChecked": 0, "comments": 0, "attachments": 0, "description": true,
            "due": null, "dueComplete": false},
        "checkItemStates": [],
        "closed": closed,
        "dateLastActivity": "2019-09-16T16:19:17.156Z",
        "desc": "👋Hey there,\n\nTrello's Platform team uses this board to keep developers up-to-date.",
        "due": null,
        "dueComplete": false,
        "idBoard": BOARD,
        "idChecklists": [],
        "idLabels": ["5abbe4b7ddc1b351ef961420"],
        "idList": list,
        "idMembers": [],
        "idShort": 12,
        "labels": [{"id": "5abbe4b7ddc1b351ef961420", "idBoard": BOARD, "name": "Bug", "color": "red"}],
        "name": "Fix login",
        "pos": 65535,
        "shortUrl": "https://trello.com/c/abc123",
        "url": "https://trello.com/c/abc123/12-fix-login"
    })
}

fn comment(id: &str, text: &str, author: &str) -> Value {
    json!({
        "id": id,
        "idMemberCreator": author,
        "data": {
            "text": text,
            "card": {"id": CARD, "name": "Fix login", "idShort": 12, "shortLink": "abc123"},
            "board": {"id": BOARD, "name": "Engineering", "shortLink": "def456"},
            "list": {"id": "5abbe4b7ddc1b351ef961416", "name": "Doing"}
        },
        "type": "commentCard",
        "date": "2020-07-23T18:25:43.511Z",
        "memberCreator": {"id": author, "username": "hookbridge-bot", "fullName": "hookbridge"}
    })
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creates_a_webhook_with_a_json_body_and_the_credentials_in_the_query() {
    let server = MockServer::start().await;
    given("POST", "/1/webhooks/")
        .and(query_param_is_missing("callbackURL"))
        .and(body_json(json!({
            "callbackURL": CALLBACK, "idModel": BOARD, "description": "hookbridge", "active": true
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook(
            "5abbe4b7ddc1b351ef961499",
            CALLBACK,
            BOARD,
            true,
            0,
        )))
        .expect(1)
        .mount(&server)
        .await;

    let hook = client(&server)
        .create_webhook(&NewWebhook {
            callback_url: CALLBACK.into(),
            id_model: BOARD.into(),
            description: Some("hookbridge".into()),
            active: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(hook.id, "5abbe4b7ddc1b351ef961499");
    assert_eq!(hook.callback_url, CALLBACK);
    assert!(hook.active && !hook.is_failing());
    assert_eq!(hook.failing_since(), None);
}

#[tokio::test]
async fn lists_the_tokens_webhooks_with_their_failure_counts() {
    let server = MockServer::start().await;
    given("GET", &format!("/1/tokens/{TOKEN}/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            webhook(
                "5abbe4b7ddc1b351ef961414",
                "https://mywebhookurl.com/?type=board",
                BOARD,
                true,
                0
            ),
            webhook("5abbe4b7ddc1b351ef961498", CALLBACK, BOARD, false, 7),
        ])))
        .expect(1)
        .mount(&server)
        .await;

    let hooks = client(&server).list_webhooks().await.unwrap();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[1].consecutive_failures, 7);
    assert_eq!(
        hooks[1].failing_since(),
        Some(time::macros::datetime!(2024-05-17 09:21:03.512 UTC))
    );
}

#[tokio::test]
async fn gets_updates_and_deletes_a_webhook() {
    let server = MockServer::start().await;
    let id = "5abbe4b7ddc1b351ef961414";
    given("GET", &format!("/1/webhooks/{id}"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(webhook(id, CALLBACK, BOARD, true, 0)),
        )
        .expect(1)
        .mount(&server)
        .await;
    given("PUT", &format!("/1/webhooks/{id}"))
        .and(body_json(json!({"description": "paused", "active": false})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(webhook(id, CALLBACK, BOARD, false, 0)),
        )
        .expect(1)
        .mount(&server)
        .await;
    given("DELETE", &format!("/1/webhooks/{id}"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"_value": null})))
        .expect(1)
        .mount(&server)
        .await;

    let trello = client(&server);
    assert_eq!(trello.get_webhook(id).await.unwrap().id_model, BOARD);
    let paused = trello
        .update_webhook(
            id,
            &WebhookUpdate {
                description: Some("paused".into()),
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!paused.active);
    trello.delete_webhook(id).await.unwrap();
}

#[tokio::test]
async fn sync_creates_reactivates_deletes_owned_and_leaves_foreign_webhooks() {
    let server = MockServer::start().await;
    let other_board = "5abbe4b7ddc1b351ef961416";
    let third_board = "5abbe4b7ddc1b351ef961417";
    given("GET", &format!("/1/tokens/{TOKEN}/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            // Desired, active, failing lately.
            webhook("aaaaaaaaaaaaaaaaaaaaaaa1", CALLBACK, BOARD, true, 2),
            // Desired, deactivated by Trello.
            webhook(
                "aaaaaaaaaaaaaaaaaaaaaaa2",
                CALLBACK,
                other_board,
                false,
                1000
            ),
            // Ours, no longer desired.
            webhook(
                "aaaaaaaaaaaaaaaaaaaaaaa3",
                "https://hooks.example.com/hooks/old",
                BOARD,
                true,
                0
            ),
            // Another integration's, on the same token.
            webhook(
                "aaaaaaaaaaaaaaaaaaaaaaa4",
                "https://elsewhere.example.org/trello",
                BOARD,
                true,
                0
            ),
        ])))
        .mount(&server)
        .await;
    given("PUT", "/1/webhooks/aaaaaaaaaaaaaaaaaaaaaaa2")
        .and(body_json(json!({"active": true})))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook(
            "aaaaaaaaaaaaaaaaaaaaaaa2",
            CALLBACK,
            other_board,
            true,
            0,
        )))
        .expect(1)
        .mount(&server)
        .await;
    given("POST", "/1/webhooks/")
        .and(body_json(
            json!({"callbackURL": CALLBACK, "idModel": third_board, "active": true}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook(
            "aaaaaaaaaaaaaaaaaaaaaaa5",
            CALLBACK,
            third_board,
            true,
            0,
        )))
        .expect(1)
        .mount(&server)
        .await;
    given("DELETE", "/1/webhooks/aaaaaaaaaaaaaaaaaaaaaaa3")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"_value": null})))
        .expect(1)
        .mount(&server)
        .await;

    let desired = [
        DesiredWebhook::new(CALLBACK, BOARD),
        DesiredWebhook::new(CALLBACK, other_board),
        DesiredWebhook::new(CALLBACK, third_board),
    ];
    let report = client(&server)
        .sync_webhooks(&desired, |hook| {
            hook.callback_url.starts_with("https://hooks.example.com/")
        })
        .await
        .unwrap();
    let ids = |hooks: &[hookbridge_providers::trello::client::Webhook]| {
        hooks.iter().map(|h| h.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&report.unchanged), ["aaaaaaaaaaaaaaaaaaaaaaa1"]);
    assert_eq!(ids(&report.reactivated), ["aaaaaaaaaaaaaaaaaaaaaaa2"]);
    assert_eq!(ids(&report.created), ["aaaaaaaaaaaaaaaaaaaaaaa5"]);
    assert_eq!(ids(&report.deleted), ["aaaaaaaaaaaaaaaaaaaaaaa3"]);
    assert_eq!(ids(&report.foreign), ["aaaaaaaaaaaaaaaaaaaaaaa4"]);
    assert_eq!(
        ids(&report.failing),
        ["aaaaaaaaaaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaaaaaaaaaa2"]
    );
}

// ---------------------------------------------------------------------------------------------
// Cards
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn gets_a_card() {
    let server = MockServer::start().await;
    given("GET", &format!("/1/cards/{CARD}"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(card("5abbe4b7ddc1b351ef961416", false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let card = client(&server).get_card(CARD).await.unwrap();
    assert_eq!(card.name, "Fix login");
    assert_eq!(card.id_list.as_deref(), Some("5abbe4b7ddc1b351ef961416"));
    assert_eq!(card.labels[0].name.as_deref(), Some("Bug"));
    assert_eq!(card.due, None);
    assert_eq!(
        card.date_last_activity,
        Some(time::macros::datetime!(2019-09-16 16:19:17.156 UTC))
    );
}

#[tokio::test]
async fn updates_moves_and_archives_a_card() {
    let server = MockServer::start().await;
    given("PUT", &format!("/1/cards/{CARD}"))
        .and(body_json(
            json!({"name": "Fix login on Safari", "desc": "See PROJ-12",
            "due": "2024-06-01T12:00:00Z", "dueComplete": false}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(card("5abbe4b7ddc1b351ef961416", false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    given("PUT", &format!("/1/cards/{CARD}"))
        .and(body_json(json!({"idList": "5abbe4b7ddc1b351ef961418"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(card("5abbe4b7ddc1b351ef961418", false)),
        )
        .expect(1)
        .mount(&server)
        .await;
    given("PUT", &format!("/1/cards/{CARD}"))
        .and(body_json(json!({"closed": true})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(card("5abbe4b7ddc1b351ef961418", true)),
        )
        .expect(1)
        .mount(&server)
        .await;

    let trello = client(&server);
    trello
        .update_card(
            CARD,
            &CardUpdate {
                name: Some("Fix login on Safari".into()),
                desc: Some("See PROJ-12".into()),
                due: Some(Due::At(time::macros::datetime!(2024-06-01 12:00 UTC))),
                due_complete: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let moved = trello
        .move_card(CARD, "5abbe4b7ddc1b351ef961418")
        .await
        .unwrap();
    assert_eq!(moved.id_list.as_deref(), Some("5abbe4b7ddc1b351ef961418"));
    assert!(trello.set_card_closed(CARD, true).await.unwrap().closed);
}

// ---------------------------------------------------------------------------------------------
// Comments
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn adds_a_comment() {
    let server = MockServer::start().await;
    given("POST", &format!("/1/cards/{CARD}/actions/comments"))
        .and(query_param_is_missing("text"))
        .and(body_json(json!({"text": "Looks good"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment(
            "5f1a7b3c9d1e2a3b4c5d6e7f",
            "Looks good",
            BOT,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let action = client(&server)
        .add_comment(CARD, "Looks good")
        .await
        .unwrap();
    assert_eq!(action.id, "5f1a7b3c9d1e2a3b4c5d6e7f");
    assert_eq!(action.kind, ActionType::CommentCard);
    assert_eq!(action.data.text.as_deref(), Some("Looks good"));
}

/// Page 0: 50 comments, none marked; page 1: the bot's marked comment and a stranger's.
async fn mount_comment_pages(server: &MockServer, marked_text: &str) {
    let page0: Vec<Value> = (0..50)
        .map(|i| {
            comment(
                &format!("c{i:023}"),
                &format!("comment {i}"),
                "5a1b2c3d4e5f607182930000",
            )
        })
        .collect();
    given("GET", &format!("/1/cards/{CARD}/actions"))
        .and(query_param("filter", "commentCard"))
        .and(query_param("page", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(Value::Array(page0)))
        .mount(server)
        .await;
    given("GET", &format!("/1/cards/{CARD}/actions"))
        .and(query_param("filter", "commentCard"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            comment(
                "d00000000000000000000001",
                "forged [hookbridge:github]",
                "5a1b2c3d4e5f607182939999"
            ),
            comment("d00000000000000000000002", marked_text, BOT),
        ])))
        .mount(server)
        .await;
}

#[tokio::test]
async fn streams_comments_across_pages() {
    let server = MockServer::start().await;
    mount_comment_pages(&server, "PR #7 merged\n[hookbridge:github]").await;
    let comments: Vec<_> = client(&server).comments(CARD).try_collect().await.unwrap();
    assert_eq!(comments.len(), 52);
    assert_eq!(comments[51].id, "d00000000000000000000002");
}

#[tokio::test]
async fn upsert_edits_the_bots_marked_comment_once() {
    let server = MockServer::start().await;
    mount_comment_pages(&server, "PR #7 opened\n[hookbridge:github]").await;
    given(
        "PUT",
        &format!("/1/cards/{CARD}/actions/d00000000000000000000002/comments"),
    )
    .and(body_json(
        json!({"text": "PR #7 merged\n[hookbridge:github]"}),
    ))
    .respond_with(ResponseTemplate::new(200).set_body_json(comment(
        "d00000000000000000000002",
        "PR #7 merged\n[hookbridge:github]",
        BOT,
    )))
    .expect(1)
    .mount(&server)
    .await;
    let change = client(&server)
        .upsert_comment(CARD, "[hookbridge:github]", "PR #7 merged", Some(BOT))
        .await
        .unwrap();
    // The stranger's comment with the same marker was not taken for the bot's.
    assert_eq!(
        change,
        CommentChange::Edited {
            action_id: "d00000000000000000000002".into()
        }
    );
}

#[tokio::test]
async fn upsert_leaves_an_identical_comment_and_creates_a_missing_one() {
    let server = MockServer::start().await;
    mount_comment_pages(&server, "PR #7 merged\n[hookbridge:github]").await;
    given("POST", &format!("/1/cards/{CARD}/actions/comments"))
        .and(body_json(json!({"text": "Deployed\n[hookbridge:travis]"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment(
            "d00000000000000000000003",
            "Deployed\n[hookbridge:travis]",
            BOT,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let trello = client(&server);
    let same = trello
        .upsert_comment(
            CARD,
            "[hookbridge:github]",
            "PR #7 merged\n[hookbridge:github]",
            Some(BOT),
        )
        .await
        .unwrap();
    assert_eq!(
        same,
        CommentChange::Unchanged {
            action_id: "d00000000000000000000002".into()
        }
    );
    let created = trello
        .upsert_comment(CARD, "[hookbridge:travis]", "Deployed", Some(BOT))
        .await
        .unwrap();
    assert_eq!(
        created,
        CommentChange::Created {
            action_id: "d00000000000000000000003".into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Errors, retries, secrecy
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unauthorized_is_typed_and_never_shows_the_credentials() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/1/cards/{CARD}")))
        .respond_with(ResponseTemplate::new(401).set_body_string("invalid token"))
        .mount(&server)
        .await;
    let error = client(&server).get_card(CARD).await.unwrap_err();
    assert!(matches!(error, ApiError::Unauthorized { .. }), "{error}");
    assert!(error.to_string().contains("invalid token"), "{error}");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(TOKEN) && !shown.contains(KEY), "{shown}");
    }
}

#[tokio::test]
async fn not_found_is_typed() {
    let server = MockServer::start().await;
    Mock::given(path("/1/webhooks/5abbe4b7ddc1b351ef961400"))
        .respond_with(
            ResponseTemplate::new(404).set_body_string("The requested resource was not found."),
        )
        .mount(&server)
        .await;
    let error = client(&server)
        .get_webhook("5abbe4b7ddc1b351ef961400")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
}

#[tokio::test]
async fn rate_limited_with_retry_after_is_returned_for_the_engine() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/1/cards/{CARD}")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_json(json!({"error": "API_TOKEN_LIMIT_EXCEEDED",
                    "message": "Rate limit exceeded"})),
        )
        .mount(&server)
        .await;
    let error = client(&server).get_card(CARD).await.unwrap_err();
    assert!(matches!(error, ApiError::RateLimited { .. }), "{error}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path(format!("/1/tokens/{TOKEN}/webhooks")))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    given("GET", &format!("/1/tokens/{TOKEN}/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    assert!(client(&server).list_webhooks().await.unwrap().is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_connection_failure_does_not_leak_the_url() {
    // Nothing listens on port 1: the error is a transport error whose text must not carry
    // the request URL (it has the key and token in its query, and the token in its path).
    let trello = TrelloClient::from_settings(settings("http://127.0.0.1:1/1".into())).unwrap();
    let error = trello.list_webhooks().await.unwrap_err();
    assert!(matches!(error, ApiError::Transport { .. }), "{error}");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(TOKEN) && !shown.contains(KEY), "{shown}");
    }
}

#[tokio::test]
async fn a_client_without_a_token_cannot_list_webhooks() {
    let api = hookbridge_providers::api::ApiClient::builder("trello", "https://api.trello.com/1")
        .unwrap()
        .auth(TrelloCredentials::new(KEY, TOKEN).auth().unwrap())
        .build()
        .unwrap();
    let error = TrelloClient::new(api).list_webhooks().await.unwrap_err();
    assert!(matches!(error, ApiError::Config { .. }), "{error}");
}
