//! The chat message of a build notification: one readable line (repository, build number,
//! branch or pull request, event, author, the commit message's first line, the build's
//! URL), the same with Slack formatting, and the details as fields.

use hookbridge_providers::sinks::Message;
use hookbridge_providers::travis::events::BuildNotification;

use super::fanout::key_part;
use super::outcome::BuildEvent;

/// The longest commit message line shown.
const MAX_SUBJECT_CHARS: usize = 100;

/// The key naming one notification of one build: the build id and state, and when that
/// run of the build started or finished. Travis CI reuses the build id when a build is
/// restarted, so the time is what tells a restart's result from the first run's.
pub(super) fn message_key(build: &BuildNotification) -> String {
    let at = build
        .finished_at
        .or(build.started_at)
        .map_or(0, |t| t.unix_timestamp());
    format!(
        "travis-{}-{}-{at}",
        build.id,
        key_part(build.state.as_str())
    )
}

/// The message for `target`, with `key` + target as its idempotency key (so a sink that
/// deduplicates by key posts it once per target, whatever the retries).
pub(super) fn message(
    prefix: &str,
    build: &BuildNotification,
    event: BuildEvent,
    key: &str,
    target: &str,
) -> Message {
    let slug = build.repository.slug();
    let number = build
        .number
        .as_deref()
        .map_or_else(|| format!("build {}", build.id), |n| format!("#{n}"));
    let place = place(build);
    let author = build
        .author_name
        .as_deref()
        .or(build.committer_name.as_deref())
        .filter(|a| !a.trim().is_empty());
    let subject = build
        .message
        .as_deref()
        .map(first_line)
        .filter(|s| !s.is_empty());
    let says = match (author, &subject) {
        (Some(a), Some(s)) => format!("{a}: {s}"),
        (Some(a), None) => a.to_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => String::new(),
    };

    let mut text = format!("{prefix} {slug} {number} ({place}) {}", event.label())
        .trim_start()
        .to_owned();
    if !says.is_empty() {
        text.push_str(" · ");
        text.push_str(&says);
    }
    if let Some(url) = &build.build_url {
        text.push_str(" · ");
        text.push_str(url);
    }

    let linked = match &build.build_url {
        Some(url) => format!("<{}|{}>", escape(url).replace('|', "%7C"), escape(&number)),
        None => escape(&number),
    };
    let mut markdown = format!(
        "{}*{}* {linked} ({}) *{}*",
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{} ", escape(prefix))
        },
        escape(&slug),
        escape(&place),
        event.label()
    );
    if !says.is_empty() {
        markdown.push_str(" · ");
        markdown.push_str(&escape(&says));
    }

    let mut message = Message::new(format!("{key}-{}", key_part(target)), text)
        .with_markdown(markdown)
        .with_field("Repository", slug)
        .with_field("Build", number)
        .with_field("Status", event.label());
    if let Some(branch) = &build.branch {
        message = message.with_field("Branch", branch.clone());
    }
    if let Some(author) = author {
        message = message.with_field("Author", author);
    }
    if let Some(commit) = &build.commit {
        message = message.with_field("Commit", commit.chars().take(7).collect::<String>());
    }
    if let Some(url) = &build.build_url {
        message = message.with_url(url.clone());
    }
    message
}

/// Where the build ran: `main`, `pull request #12 into main`, `tag v1.2`.
fn place(build: &BuildNotification) -> String {
    let branch = build.branch.as_deref().unwrap_or("unknown branch");
    if build.is_pull_request() {
        return match build.pull_request_number {
            Some(n) => format!("pull request #{n} into {branch}"),
            None => format!("pull request into {branch}"),
        };
    }
    match build.tag.as_deref().filter(|t| !t.is_empty()) {
        Some(tag) => format!("tag {tag}"),
        None => branch.to_owned(),
    }
}

/// The first non-empty line, cut to [`MAX_SUBJECT_CHARS`].
fn first_line(message: &str) -> String {
    let line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if line.chars().count() <= MAX_SUBJECT_CHARS {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(MAX_SUBJECT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Slack's control characters, escaped in text not meant as markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> BuildNotification {
        let path = format!(
            "{}/../providers/samples/travis/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn one_readable_line() {
        let build = sample("build.fixed");
        let key = message_key(&build);
        assert_eq!(key, "travis-267005877-passed-1715945660");
        let m = message("[Travis CI]", &build, BuildEvent::Fixed, &key, "ops slack");
        assert_eq!(
            m.text,
            "[Travis CI] acme/billing-service #1187 (main) fixed · Grace Hopper: Fix flaky clock in retry test · https://app.travis-ci.com/github/acme/billing-service/builds/267005877"
        );
        assert!(!m.text.contains('\n'));
        assert_eq!(m.idempotency_key, format!("{key}-ops_slack"));
        assert_eq!(
            m.url.as_deref(),
            Some("https://app.travis-ci.com/github/acme/billing-service/builds/267005877")
        );
        assert!(m.fields.contains(&("Commit".into(), "1a2b3c4".into())));
        assert!(
            m.markdown.as_deref().unwrap().starts_with(
                "[Travis CI] *acme/billing-service* <https://app.travis-ci.com/github/acme/billing-service/builds/267005877|#1187> (main) *fixed*"
            ),
            "{:?}",
            m.markdown
        );
    }

    #[test]
    fn pull_requests_tags_and_long_messages() {
        let mut build = sample("build.fixed");
        build.build_type = Some(hookbridge_providers::travis::events::BuildType::PullRequest);
        build.pull_request_number = Some(45);
        build.message = Some(format!("\n  {}\n\nbody <b>", "x".repeat(150)));
        let m = message("", &build, BuildEvent::Failed, "k", "t");
        assert!(
            m.text.starts_with(
                "acme/billing-service #1187 (pull request #45 into main) failed · Grace Hopper: xxx"
            ),
            "{}",
            m.text
        );
        assert!(m.text.contains("x…"), "{}", m.text);
        assert!(!m.text.contains("body"));
        build.build_type = None;
        build.pull_request = Some(false);
        build.tag = Some("v1.2.0".into());
        let m = message("[CI]", &build, BuildEvent::StillFailing, "k", "t");
        assert!(m.text.contains("(tag v1.2.0) still failing"), "{}", m.text);
        build.author_name = Some("<script>".into());
        let m = message("[CI]", &build, BuildEvent::Passed, "k", "t");
        assert!(m.markdown.unwrap().contains("&lt;script&gt;"));
    }

    #[test]
    fn a_restart_is_another_message() {
        let first = sample("build.failed");
        let mut restart = first.clone();
        restart.started_at = restart.started_at.map(|t| t + time::Duration::hours(1));
        restart.finished_at = restart.finished_at.map(|t| t + time::Duration::hours(1));
        assert_ne!(message_key(&first), message_key(&restart));
        assert_eq!(message_key(&first), message_key(&first.clone()));
    }
}
