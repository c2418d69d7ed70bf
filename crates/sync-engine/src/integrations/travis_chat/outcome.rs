//! The build events routes filter on, read from the notification as Travis CI computes
//! them (`status_message`, else `result_message`), and derived the way Travis CI derives
//! them when a notification carries neither: from the build's state and the result of the
//! previous build of the same branch.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use hookbridge_providers::travis::events::{BuildNotification, BuildState, StatusMessage};
use serde::{Deserialize, Serialize};

/// What a build notification says happened, relative to the previous build of the branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildEvent {
    /// The build started (or is queued).
    Pending,
    /// Passed, as the previous build did (or there was none).
    Passed,
    /// Failed, and there was no previous build to compare with.
    Failed,
    /// Failed after the previous build passed.
    Broken,
    /// Passed after the previous build failed.
    Fixed,
    /// Failed, as the previous build did.
    StillFailing,
    /// Canceled.
    Canceled,
    /// Errored (the build could not run: configuration, infrastructure).
    Errored,
}

impl BuildEvent {
    /// Every event, in the order they are listed.
    pub const ALL: [BuildEvent; 8] = [
        BuildEvent::Pending,
        BuildEvent::Passed,
        BuildEvent::Failed,
        BuildEvent::Broken,
        BuildEvent::Fixed,
        BuildEvent::StillFailing,
        BuildEvent::Canceled,
        BuildEvent::Errored,
    ];

    /// The events a route without its own list follows unless the defaults are changed:
    /// every finished result except canceled and errored (err-travishook's defaults).
    pub const DEFAULT: [BuildEvent; 5] = [
        BuildEvent::Passed,
        BuildEvent::Fixed,
        BuildEvent::Broken,
        BuildEvent::Failed,
        BuildEvent::StillFailing,
    ];

    /// The name used in configuration, filters and messages: `still_failing`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            BuildEvent::Pending => "pending",
            BuildEvent::Passed => "passed",
            BuildEvent::Failed => "failed",
            BuildEvent::Broken => "broken",
            BuildEvent::Fixed => "fixed",
            BuildEvent::StillFailing => "still_failing",
            BuildEvent::Canceled => "canceled",
            BuildEvent::Errored => "errored",
        }
    }

    /// As a person reads it: `still failing`.
    pub fn label(self) -> &'static str {
        match self {
            BuildEvent::StillFailing => "still failing",
            other => other.as_str(),
        }
    }

    fn from_message(message: &StatusMessage) -> Option<BuildEvent> {
        Some(match message {
            StatusMessage::Pending => BuildEvent::Pending,
            StatusMessage::Passed => BuildEvent::Passed,
            StatusMessage::Fixed => BuildEvent::Fixed,
            StatusMessage::Broken => BuildEvent::Broken,
            StatusMessage::Failed => BuildEvent::Failed,
            StatusMessage::StillFailing => BuildEvent::StillFailing,
            StatusMessage::Canceled => BuildEvent::Canceled,
            StatusMessage::Errored => BuildEvent::Errored,
            StatusMessage::Other(_) => return None,
        })
    }
}

impl fmt::Display for BuildEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown build event `{0}` (known: pending, passed, failed, broken, fixed, still_failing, canceled, errored, or `*`)"
)]
pub struct UnknownEvent(pub String);

impl FromStr for BuildEvent {
    type Err = UnknownEvent;

    /// Accepts the configuration name (`still_failing`), Travis CI's message
    /// (`Still Failing`) and `still-failing`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let normal: String = text
            .trim()
            .chars()
            .map(|c| match c {
                ' ' | '-' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        BuildEvent::ALL
            .into_iter()
            .find(|e| e.as_str() == normal)
            .ok_or_else(|| UnknownEvent(text.to_owned()))
    }
}

/// The events a route wants: all of them (`*`), or a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventFilter {
    /// Every event, including ones added later (`*`).
    All,
    /// These events.
    Only(BTreeSet<BuildEvent>),
}

impl EventFilter {
    /// Reads a list of names; `*` anywhere means every event. An empty list is refused:
    /// a route that wants nothing is a mistake, not a filter.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<EventFilter, UnknownEvent> {
        if names.is_empty() {
            return Err(UnknownEvent("(an empty list)".into()));
        }
        if names.iter().any(|n| n.as_ref().trim() == "*") {
            return Ok(EventFilter::All);
        }
        names
            .iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(EventFilter::Only)
    }

    /// Whether the filter lets `event` through.
    pub fn wants(&self, event: BuildEvent) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(events) => events.contains(&event),
        }
    }

    /// The names, as written in configuration (`["*"]` for all).
    pub fn names(&self) -> Vec<String> {
        match self {
            EventFilter::All => vec!["*".to_owned()],
            EventFilter::Only(events) => events.iter().map(|e| e.as_str().to_owned()).collect(),
        }
    }
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter::Only(BuildEvent::DEFAULT.into_iter().collect())
    }
}

/// The result of a finished build, remembered per branch to derive the next build's event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Finished {
    Passed,
    /// Failed or errored: what Travis CI compares against as "failed".
    Failed,
}

impl Finished {
    /// The result of `build`, if it finished with one that counts (a canceled build
    /// leaves the branch's result as it was).
    pub(super) fn of(build: &BuildNotification) -> Option<Finished> {
        match build.state {
            BuildState::Passed => Some(Finished::Passed),
            BuildState::Failed | BuildState::Errored => Some(Finished::Failed),
            _ => None,
        }
    }
}

/// The event of `build`: Travis CI's own `status_message` (or `result_message`) when it is
/// one it documents, else derived from the state and the branch's previous result. None
/// for a state this version does not know.
pub(super) fn classify(
    build: &BuildNotification,
    previous: Option<Finished>,
) -> Option<BuildEvent> {
    if let Some(event) = build
        .status_message
        .as_ref()
        .or(build.result_message.as_ref())
        .and_then(BuildEvent::from_message)
    {
        return Some(event);
    }
    Some(match build.state {
        BuildState::Created | BuildState::Received | BuildState::Queued | BuildState::Started => {
            BuildEvent::Pending
        }
        BuildState::Passed => match previous {
            Some(Finished::Failed) => BuildEvent::Fixed,
            _ => BuildEvent::Passed,
        },
        BuildState::Failed => match previous {
            Some(Finished::Passed) => BuildEvent::Broken,
            Some(Finished::Failed) => BuildEvent::StillFailing,
            None => BuildEvent::Failed,
        },
        BuildState::Errored => BuildEvent::Errored,
        BuildState::Canceled => BuildEvent::Canceled,
        BuildState::Other(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(state: &str, message: Option<&str>) -> BuildNotification {
        serde_json::from_value(serde_json::json!({
            "id": 1, "state": state, "status_message": message,
            "repository": {"id": 2, "name": "app", "owner_name": "acme"}
        }))
        .unwrap()
    }

    #[test]
    fn names_parse_in_every_spelling() {
        for text in [
            "still_failing",
            "Still Failing",
            "still-failing",
            " STILL_FAILING ",
        ] {
            assert_eq!(text.parse(), Ok(BuildEvent::StillFailing), "{text}");
        }
        assert!("success".parse::<BuildEvent>().is_err());
        for event in BuildEvent::ALL {
            assert_eq!(event.as_str().parse(), Ok(event));
        }
    }

    #[test]
    fn filters() {
        assert_eq!(EventFilter::parse(&["failed", "*"]), Ok(EventFilter::All));
        let only = EventFilter::parse(&["fixed", "broken"]).unwrap();
        assert!(only.wants(BuildEvent::Fixed) && !only.wants(BuildEvent::Passed));
        assert_eq!(only.names(), ["broken", "fixed"]);
        assert!(EventFilter::parse::<&str>(&[]).is_err());
        assert!(EventFilter::parse(&["fixed", "nope"]).is_err());
        let default = EventFilter::default();
        assert!(!default.wants(BuildEvent::Pending) && default.wants(BuildEvent::StillFailing));
    }

    #[test]
    fn travis_message_wins() {
        assert_eq!(
            classify(&build("failed", Some("Broken")), Some(Finished::Failed)),
            Some(BuildEvent::Broken)
        );
        assert_eq!(
            classify(&build("started", Some("Pending")), None),
            Some(BuildEvent::Pending)
        );
    }

    #[test]
    fn derived_like_travis_without_a_message() {
        use BuildEvent::*;
        let cases = [
            ("started", None, Pending),
            ("created", Some(Finished::Passed), Pending),
            ("passed", None, Passed),
            ("passed", Some(Finished::Passed), Passed),
            ("passed", Some(Finished::Failed), Fixed),
            ("failed", None, Failed),
            ("failed", Some(Finished::Passed), Broken),
            ("failed", Some(Finished::Failed), StillFailing),
            ("errored", Some(Finished::Passed), Errored),
            ("canceled", Some(Finished::Failed), Canceled),
        ];
        for (state, previous, want) in cases {
            assert_eq!(
                classify(&build(state, None), previous),
                Some(want),
                "{state} after {previous:?}"
            );
        }
        // An unknown message falls back to the derivation; an unknown state has no event.
        assert_eq!(
            classify(&build("failed", Some("Exploded")), None),
            Some(Failed)
        );
        assert_eq!(classify(&build("paused", None), None), None);
        assert_eq!(
            Finished::of(&build("errored", None)),
            Some(Finished::Failed)
        );
        assert_eq!(Finished::of(&build("canceled", None)), None);
    }
}
