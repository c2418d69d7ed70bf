//! Typed GitHub events: every fixture parses to its typed variant, plus the forward
//! compatibility and error rules of `GithubEvent::from_json`.

use std::path::{Path, PathBuf};

use hookbridge_providers::github::events::*;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/github")
}

/// Parses a fixture, with the event header taken from the file name before the first '.'.
fn fixture(file: &str) -> GithubEvent {
    let path = fixtures_dir().join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let event = file.split('.').next().unwrap();
    let parsed =
        GithubEvent::from_json(event, &bytes).unwrap_or_else(|e| panic!("{file}: not parsed: {e}"));
    if let GithubEvent::Untyped(u) = &parsed {
        panic!("{file}: untyped, reason {:?}", u.reason);
    }
    assert_eq!(parsed.event_type(), event, "{file}");
    parsed
}

/// Checks the accessors common to every fixture.
fn check(event: &GithubEvent, name: &str, subject: Option<&str>, sender: Option<&str>) {
    assert_eq!(event.name(), name);
    assert_eq!(event.subject().as_deref(), subject, "{name}");
    assert_eq!(event.sender().map(|u| u.login.as_str()), sender, "{name}");
}

const REPO: &str = "octo-org/octo-repo";

/// An optional timestamp as unix seconds (the tests need no date library).
macro_rules! unix {
    ($t:expr) => {
        $t.map(|t| t.unix_timestamp())
    };
}

#[test]
fn every_fixture_is_covered_and_typed() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    for file in &files {
        let event = fixture(file);
        // The expected name is the file name without ".json".
        assert_eq!(event.name(), file.trim_end_matches(".json"));
        assert!(event.subject().is_some(), "{file}");
        assert_eq!(
            event.sender().map(|u| u.login.as_str()),
            Some("octocat"),
            "{file}"
        );
    }
}

#[test]
fn issues_opened() {
    let event = fixture("issues.opened.json");
    check(
        &event,
        "issues.opened",
        Some("github:octo-org/octo-repo#12"),
        Some("octocat"),
    );
    let GithubEvent::Issues(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, IssuesAction::Opened);
    assert_eq!(e.issue.number, 12);
    assert_eq!(e.issue.state, "open");
    assert!(e.issue.body.as_deref().unwrap().contains("WAL checkpoint"));
    let labels: Vec<&str> = e.issue.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(labels, ["bug", "needs-triage"]);
    assert!(e.issue.pull_request.is_none());
    assert_eq!(e.installation.as_ref().map(|i| i.id), Some(52340187));
    let repo = event.repository().unwrap();
    assert_eq!(repo.full_name, REPO);
    assert_eq!(repo.owner.login, "octo-org");
    assert_eq!(repo.owner.kind.as_deref(), Some("Organization"));
    assert_eq!(repo.default_branch.as_deref(), Some("main"));
    assert_eq!(unix!(event.updated_at()), Some(1715937663)); // 2024-05-17T09:21:03Z
    assert_eq!(event.installation_id(), Some(52340187));
}

#[test]
fn issues_closed() {
    let event = fixture("issues.closed.json");
    check(
        &event,
        "issues.closed",
        Some("github:octo-org/octo-repo#12"),
        Some("octocat"),
    );
    let GithubEvent::Issues(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.issue.state, "closed");
    assert_eq!(e.issue.state_reason.as_deref(), Some("completed"));
    assert_eq!(unix!(e.issue.closed_at), Some(1716041112)); // 2024-05-18T14:05:12Z
    assert_eq!(e.issue.assignees[0].login, "monalisa");
    assert_eq!(unix!(event.updated_at()), Some(1716041112)); // 2024-05-18T14:05:12Z
}

#[test]
fn issues_labeled() {
    let event = fixture("issues.labeled.json");
    check(
        &event,
        "issues.labeled",
        Some("github:octo-org/octo-repo#12"),
        Some("octocat"),
    );
    let GithubEvent::Issues(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, IssuesAction::Labeled);
    let label = e.label.as_ref().unwrap();
    assert_eq!(label.name, "enhancement");
    assert_eq!(label.color.as_deref(), Some("a2eeef"));
}

#[test]
fn issue_comment_created() {
    let event = fixture("issue_comment.created.json");
    check(
        &event,
        "issue_comment.created",
        Some("github:octo-org/octo-repo#12"),
        Some("octocat"),
    );
    let GithubEvent::IssueComment(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, IssueCommentAction::Created);
    assert_eq!(e.comment.id, 2117381052);
    assert!(e.comment.body.as_deref().unwrap().contains("#34"));
    assert_eq!(e.comment.author_association.as_deref(), Some("MEMBER"));
    assert_eq!(unix!(event.updated_at()), Some(1715949008)); // 2024-05-17T12:30:08Z
}

#[test]
fn pull_request_opened() {
    let event = fixture("pull_request.opened.json");
    check(
        &event,
        "pull_request.opened",
        Some("github:octo-org/octo-repo#34"),
        Some("octocat"),
    );
    let GithubEvent::PullRequest(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, PullRequestAction::Opened);
    assert_eq!(e.number, Some(34));
    assert_eq!(e.pull_request.user.login, "hubot");
    assert_eq!(e.pull_request.head.ref_name, "fix/busy-timeout");
    assert_eq!(e.pull_request.base.ref_name, "main");
    assert_eq!(
        e.pull_request.head.label.as_deref(),
        Some("octo-org:fix/busy-timeout")
    );
    assert_eq!(e.pull_request.merged, Some(false));
    assert!(!e.pull_request.draft);
}

#[test]
fn pull_request_closed_merged() {
    let event = fixture("pull_request.closed.json");
    check(
        &event,
        "pull_request.closed",
        Some("github:octo-org/octo-repo#34"),
        Some("octocat"),
    );
    let GithubEvent::PullRequest(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, PullRequestAction::Closed);
    assert_eq!(e.pull_request.state, "closed");
    assert_eq!(e.pull_request.merged, Some(true));
    assert_eq!(unix!(e.pull_request.merged_at), Some(1716041109)); // 2024-05-18T14:05:09Z
    assert_eq!(e.pull_request.merged_by.as_ref().unwrap().login, "monalisa");
    assert_eq!(unix!(event.updated_at()), Some(1716041110)); // 2024-05-18T14:05:10Z
}

#[test]
fn pull_request_synchronize() {
    let event = fixture("pull_request.synchronize.json");
    check(
        &event,
        "pull_request.synchronize",
        Some("github:octo-org/octo-repo#34"),
        Some("octocat"),
    );
    let GithubEvent::PullRequest(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, PullRequestAction::Synchronize);
    assert_eq!(
        e.before.as_deref(),
        Some("6dcb09b5b57875f334f61aebed695e2e4193db5e")
    );
    assert_eq!(e.after.as_deref(), Some(e.pull_request.head.sha.as_str()));
}

#[test]
fn pull_request_review_submitted() {
    let event = fixture("pull_request_review.submitted.json");
    check(
        &event,
        "pull_request_review.submitted",
        Some("github:octo-org/octo-repo#34"),
        Some("octocat"),
    );
    let GithubEvent::PullRequestReview(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, PullRequestReviewAction::Submitted);
    assert_eq!(e.review.state, "approved");
    assert_eq!(e.review.user.as_ref().unwrap().login, "monalisa");
    // The shorter pull request object of review events has no `merged`.
    assert_eq!(e.pull_request.merged, None);
    assert_eq!(unix!(event.updated_at()), Some(1715953459)); // 2024-05-17T13:44:19Z
}

#[test]
fn pull_request_review_comment_created() {
    let event = fixture("pull_request_review_comment.created.json");
    check(
        &event,
        "pull_request_review_comment.created",
        Some("github:octo-org/octo-repo#34"),
        Some("octocat"),
    );
    let GithubEvent::PullRequestReviewComment(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, PullRequestReviewCommentAction::Created);
    assert_eq!(
        e.comment.path.as_deref(),
        Some("crates/sync-engine/src/inbox.rs")
    );
    assert_eq!(e.comment.line, Some(44));
    assert_eq!(e.comment.pull_request_review_id, Some(2063118475));
    assert_eq!(e.comment.in_reply_to_id, None);
}

#[test]
fn push() {
    let event = fixture("push.json");
    check(
        &event,
        "push",
        Some("github:octo-org/octo-repo@refs/heads/main"),
        Some("octocat"),
    );
    assert_eq!(event.action(), None);
    let GithubEvent::Push(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.ref_name, "refs/heads/main");
    assert_eq!(e.commits.len(), 2);
    assert!(!e.created && !e.deleted && !e.forced);
    assert_eq!(e.pusher.name, "octocat");
    assert_eq!(e.pusher.email.as_deref(), Some("octocat@github.com"));
    let head = e.head_commit.as_ref().unwrap();
    assert_eq!(head.id, e.after);
    assert_eq!(head.added, ["docs/operations.md"]);
    assert_eq!(
        head.author.as_ref().unwrap().username.as_deref(),
        Some("octocat")
    );
    // Push payloads carry unix-integer repository timestamps: they must not break parsing.
    assert_eq!(event.repository().unwrap().full_name, REPO);
    assert_eq!(unix!(event.updated_at()), Some(1716041109)); // 2024-05-18T16:05:09+02:00
}

#[test]
fn create_tag() {
    let event = fixture("create.json");
    check(
        &event,
        "create",
        Some("github:octo-org/octo-repo@refs/tags/v0.4.0"),
        Some("octocat"),
    );
    let GithubEvent::Create(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.ref_type, RefType::Tag);
    assert_eq!(e.ref_name, "v0.4.0");
    assert_eq!(e.master_branch.as_deref(), Some("main"));
}

#[test]
fn delete_branch() {
    let event = fixture("delete.json");
    check(
        &event,
        "delete",
        Some("github:octo-org/octo-repo@refs/heads/fix/busy-timeout"),
        Some("octocat"),
    );
    let GithubEvent::Delete(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.ref_type, RefType::Branch);
    assert_eq!(e.pusher_type.as_deref(), Some("user"));
}

#[test]
fn label_created() {
    let event = fixture("label.created.json");
    check(
        &event,
        "label.created",
        Some("github:octo-org/octo-repo/label/priority: high"),
        Some("octocat"),
    );
    let GithubEvent::Label(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, LabelAction::Created);
    assert_eq!(
        e.label.description.as_deref(),
        Some("Needs attention this week")
    );
}

#[test]
fn release_published() {
    let event = fixture("release.published.json");
    check(
        &event,
        "release.published",
        Some("github:octo-org/octo-repo/release/156813940"),
        Some("octocat"),
    );
    let GithubEvent::Release(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, ReleaseAction::Published);
    assert_eq!(e.release.tag_name, "v0.4.0");
    assert!(!e.release.draft && !e.release.prerelease);
    assert_eq!(unix!(event.updated_at()), Some(1716192160)); // 2024-05-20T08:02:40Z
}

#[test]
fn installation_created() {
    let event = fixture("installation.created.json");
    check(
        &event,
        "installation.created",
        Some("github:installation/52340187"),
        Some("octocat"),
    );
    assert!(event.repository().is_none());
    let GithubEvent::Installation(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, InstallationAction::Created);
    assert_eq!(
        e.installation.account.as_ref().unwrap().login.as_deref(),
        Some("octo-org")
    );
    assert_eq!(e.installation.app_slug.as_deref(), Some("hookbridge"));
    assert_eq!(e.repositories[0].full_name, REPO);
    assert_eq!(event.installation_id(), Some(52340187));
}

#[test]
fn installation_repositories_added() {
    let event = fixture("installation_repositories.added.json");
    check(
        &event,
        "installation_repositories.added",
        Some("github:installation/52340187"),
        Some("octocat"),
    );
    let GithubEvent::InstallationRepositories(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, InstallationRepositoriesAction::Added);
    assert_eq!(e.repositories_added[0].full_name, "octo-org/octo-infra");
    assert!(e.repositories_added[0].private);
    assert!(e.repositories_removed.is_empty());
}

#[test]
fn check_run_completed() {
    let event = fixture("check_run.completed.json");
    check(
        &event,
        "check_run.completed",
        Some("github:octo-org/octo-repo/check_run/25115087466"),
        Some("octocat"),
    );
    let GithubEvent::CheckRun(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.check_run.status, CheckStatus::Completed);
    assert_eq!(e.check_run.conclusion, Some(CheckConclusion::Success));
    assert_eq!(e.check_run.pull_requests[0].number, 34);
    assert_eq!(
        e.check_run.app.as_ref().unwrap().slug.as_deref(),
        Some("github-actions")
    );
    assert_eq!(unix!(event.updated_at()), Some(1715944170)); // 2024-05-17T11:09:30Z
}

#[test]
fn check_suite_completed() {
    let event = fixture("check_suite.completed.json");
    check(
        &event,
        "check_suite.completed",
        Some("github:octo-org/octo-repo/check_suite/23456789012"),
        Some("octocat"),
    );
    let GithubEvent::CheckSuite(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, CheckSuiteAction::Completed);
    assert_eq!(
        e.check_suite.head_branch.as_deref(),
        Some("fix/busy-timeout")
    );
    assert_eq!(e.check_suite.latest_check_runs_count, Some(3));
}

#[test]
fn workflow_run_completed() {
    let event = fixture("workflow_run.completed.json");
    check(
        &event,
        "workflow_run.completed",
        Some("github:octo-org/octo-repo/workflow_run/9127654321"),
        Some("octocat"),
    );
    let GithubEvent::WorkflowRun(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.workflow_run.conclusion, Some(CheckConclusion::Failure));
    assert_eq!(e.workflow_run.run_number, Some(187));
    assert_eq!(
        e.workflow.as_ref().unwrap().path.as_deref(),
        Some(".github/workflows/ci.yml")
    );
    assert_eq!(unix!(event.updated_at()), Some(1715944327)); // 2024-05-17T11:12:07Z
}

#[test]
fn ping() {
    let event = fixture("ping.json");
    check(
        &event,
        "ping",
        Some("github:hook/478352018"),
        Some("octocat"),
    );
    let GithubEvent::Ping(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.zen, "Design for failure.");
    let hook = e.hook.as_ref().unwrap();
    assert_eq!(hook.id, e.hook_id);
    assert_eq!(
        hook.config.as_ref().unwrap().url.as_deref(),
        Some("https://hooks.example.com/hooks/github")
    );
    // The hook secret (masked or not) is not kept.
    assert!(!serde_json::to_string(&event).unwrap().contains("********"));
}

#[test]
fn unknown_event_is_untyped_and_kept() {
    let json = br#"{"action":"created","sponsorship":{"tier":{"monthly_price_in_dollars":5}},
        "repository":{"full_name":"octo-org/octo-repo"},"sender":{"login":"octocat","id":1}}"#;
    let event = GithubEvent::from_json("sponsorship", json).unwrap();
    let GithubEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(u.event, "sponsorship");
    assert_eq!(u.action.as_deref(), Some("created"));
    assert_eq!(u.reason, None);
    assert_eq!(
        u.payload["sponsorship"]["tier"]["monthly_price_in_dollars"],
        5
    );
    assert_eq!(event.event_type(), "sponsorship");
    assert_eq!(event.name(), "sponsorship.created");
    assert_eq!(
        event.subject().as_deref(),
        Some("github:octo-org/octo-repo")
    );
    assert!(event.sender().is_none());
    assert_eq!(event.updated_at(), None);

    let no_action = GithubEvent::from_json("star", br#"{"starred_at":null}"#).unwrap();
    assert_eq!(no_action.name(), "star");
    assert_eq!(no_action.action(), None);
    assert_eq!(no_action.subject(), None);
}

/// A minimal issues payload, with `action` and extra top-level fields spliced in.
fn issues_payload(action: &str, extra: &str) -> String {
    format!(
        r#"{{"action":"{action}","issue":{{"id":1,"number":7,"title":"t","state":"open",
        "html_url":"https://github.com/octo-org/octo-repo/issues/7",
        "user":{{"login":"octocat","id":583231}}}},
        "repository":{{"id":1,"name":"octo-repo","full_name":"octo-org/octo-repo",
        "html_url":"https://github.com/octo-org/octo-repo","owner":{{"login":"octo-org","id":2}}}},
        "sender":{{"login":"octocat","id":583231}}{extra}}}"#
    )
}

#[test]
fn unknown_action_is_kept_typed() {
    let json = issues_payload("teleported", "");
    let event = GithubEvent::from_json("issues", json.as_bytes()).unwrap();
    let GithubEvent::Issues(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, IssuesAction::Other("teleported".into()));
    assert_eq!(e.action.as_str(), "teleported");
    assert_eq!(event.action(), Some("teleported"));
    assert_eq!(event.name(), "issues.teleported");
    assert_eq!(
        event.subject().as_deref(),
        Some("github:octo-org/octo-repo#7")
    );
    assert_eq!(event.updated_at(), None);
}

#[test]
fn unknown_fields_are_ignored() {
    let extra = r#","brand_new_field":{"nested":[1,2,{"deep":true}]},"enterprise":{"id":9}"#;
    let json = issues_payload("opened", extra).replace(
        r#""state":"open""#,
        r#""state":"open","sub_issues":{"total":3},"x":null"#,
    );
    let event = GithubEvent::from_json("issues", json.as_bytes()).unwrap();
    let GithubEvent::Issues(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.action, IssuesAction::Opened);
    assert_eq!(e.issue.number, 7);
    assert!(e.issue.labels.is_empty() && e.issue.assignees.is_empty());
}

#[test]
fn wrong_shape_of_known_event_is_untyped_with_reason() {
    let json = issues_payload("opened", "").replace(r#""number":7"#, r#""number":"7""#);
    let event = GithubEvent::from_json("issues", json.as_bytes()).unwrap();
    let GithubEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(u.event, "issues");
    assert_eq!(u.action.as_deref(), Some("opened"));
    let reason = u.reason.as_deref().unwrap();
    assert!(reason.contains("invalid type"), "{reason}");
    assert_eq!(u.payload["issue"]["number"], "7");
    assert_eq!(event.name(), "issues.opened");
    assert_eq!(
        event.subject().as_deref(),
        Some("github:octo-org/octo-repo")
    );

    // A required field missing is a shape mismatch too.
    let event = GithubEvent::from_json("ping", br#"{"zen":"Keep it logically awesome."}"#).unwrap();
    let GithubEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert!(u.reason.as_deref().unwrap().contains("hook_id"));
}

#[test]
fn malformed_json_is_an_error() {
    for (event, json) in [
        ("issues", &br#"{"action":"opened","issue":"#[..]),
        ("issues", br#"{"action":"opened",}"#),
        ("sponsorship", br#"{"action":"#),
        ("push", b""),
        ("push", b"   "),
        ("issues", br#"{"action":"opened"} trailing"#),
        // A shape mismatch early, and a syntax error later: still an error.
        ("issues", br#"{"action":5,"issue":{"#),
    ] {
        let err = GithubEvent::from_json(event, json).unwrap_err();
        assert!(
            err.is_syntax() || err.is_eof(),
            "{event} {:?}: {err}",
            String::from_utf8_lossy(json)
        );
    }
}

#[test]
fn non_object_json_is_an_error() {
    for json in [
        &b"[1,2,3]"[..],
        b"  [\"opened\", {}]",
        b"\"issues\"",
        b"42",
        b"null",
    ] {
        assert!(GithubEvent::from_json("issues", json).is_err());
        assert!(GithubEvent::from_json("sponsorship", json).is_err());
    }
}

#[test]
fn action_enums_round_trip() {
    let known = PullRequestAction::ReadyForReview;
    assert_eq!(
        serde_json::to_string(&known).unwrap(),
        r#""ready_for_review""#
    );
    let back: PullRequestAction = serde_json::from_str(r#""ready_for_review""#).unwrap();
    assert_eq!(back, known);

    let unknown: IssuesAction = serde_json::from_str(r#""teleported""#).unwrap();
    assert_eq!(unknown, IssuesAction::Other("teleported".into()));
    assert_eq!(serde_json::to_string(&unknown).unwrap(), r#""teleported""#);
    assert_eq!(unknown.to_string(), "teleported");

    assert_eq!(IssuesAction::from("untyped"), IssuesAction::Untyped);
    assert_eq!(RefType::from("tag").as_str(), "tag");
    assert!(serde_json::from_str::<IssuesAction>("5").is_err());
}

#[test]
fn typed_event_serializes_with_event_tag() {
    let event = fixture("issues.labeled.json");
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["event"], "issues");
    assert_eq!(value["payload"]["action"], "labeled");
    assert_eq!(value["payload"]["issue"]["number"], 12);
    assert_eq!(
        value["payload"]["issue"]["updated_at"],
        "2024-05-17T09:25:40Z"
    );

    let event = GithubEvent::from_json("pull_request_review_comment", br#"{"action":1}"#).unwrap();
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["event"], "untyped");
    assert_eq!(value["payload"]["event"], "pull_request_review_comment");
}
