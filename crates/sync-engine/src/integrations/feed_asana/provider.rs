//! The provider of a feed's endpoint: no HTTP delivery is ever accepted (verification always
//! fails), and what the poller stored, one entry as JSON, is parsed into an event.

use hookbridge_core::{
    DeliveryId, Event, IdentifyError, Identity, ParseError, Provider, ProviderKind, RawDelivery,
    SubjectKey, Verified, VerifyError,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The provider kind of feed entries, `feed`.
pub const KIND: ProviderKind = ProviderKind::new("feed");

/// The event name of an entry.
pub const EVENT: &str = "feed.entry";

/// One feed entry as the poller stores it and rules receive it (`event.payload::<FeedEntry>()`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// The integration whose poller read it.
    pub feed: String,
    /// The entry's id (Atom `id`, RSS `guid`, else its link).
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its page.
    #[serde(default)]
    pub url: Option<String>,
    /// Its summary or content, as the feed gives it (often HTML).
    #[serde(default)]
    pub summary: Option<String>,
    /// Its author.
    #[serde(default)]
    pub author: Option<String>,
    /// When it was published.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub published: Option<OffsetDateTime>,
    /// When it was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated: Option<OffsetDateTime>,
    /// Its categories (tags).
    #[serde(default)]
    pub categories: Vec<String>,
}

impl FeedEntry {
    /// The delivery id of the entry: its id, or, for an id too long to be a key, a digest of
    /// it. Stable, so an entry seen by two polls is stored once.
    pub fn delivery_id(&self) -> DeliveryId {
        delivery_id(&self.id)
    }
}

/// The delivery id of an entry id.
pub(crate) fn delivery_id(id: &str) -> DeliveryId {
    if id.len() <= 200 {
        return DeliveryId::new(id);
    }
    let digest = hookbridge_core::signature::hmac(
        hookbridge_core::signature::Algorithm::Sha256,
        b"hookbridge-feed-entry",
        &[id.as_bytes()],
    );
    DeliveryId::new(format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// Parses the entries a feed poller stores. One instance serves every feed endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeedProvider;

fn entry(delivery: &RawDelivery) -> Result<FeedEntry, String> {
    serde_json::from_slice(&delivery.body).map_err(|e| format!("not a feed entry: {e}"))
}

impl Provider for FeedProvider {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn verify(&self, _delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        Err(VerifyError::NotReady {
            reason: "a feed endpoint takes entries from its poller only, never over HTTP",
        })
    }

    fn identify(&self, delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
        let entry = entry(delivery).map_err(IdentifyError::Malformed)?;
        Ok(Identity {
            delivery_id: entry.delivery_id(),
            event_type: "entry".into(),
        })
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let entry = entry(delivery).map_err(ParseError::Malformed)?;
        let subject = SubjectKey::new(format!("feed:{}/{}", entry.feed, entry.id));
        let at = entry.updated.or(entry.published);
        Ok(Event::new(KIND, EVENT, entry.delivery_id(), entry)
            .with_subject(Some(subject))
            .with_occurred_at(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_poller_stores_and_refuses_http() {
        let entry = FeedEntry {
            feed: "so".into(),
            id: "https://stackoverflow.com/q/1".into(),
            title: "Q".into(),
            url: Some("https://stackoverflow.com/questions/1/q".into()),
            summary: None,
            author: None,
            published: None,
            updated: None,
            categories: vec![],
        };
        let raw = RawDelivery::new(
            "so-feed",
            http::HeaderMap::new(),
            serde_json::to_vec(&entry).unwrap(),
        );
        let provider = FeedProvider;
        assert!(provider.verify(&raw).is_err());
        assert_eq!(
            provider.identify(&raw).unwrap().delivery_id.as_str(),
            "https://stackoverflow.com/q/1"
        );
        let event = provider.parse(&raw).unwrap();
        assert_eq!(event.name().as_str(), EVENT);
        assert_eq!(event.payload::<FeedEntry>(), Some(&entry));
        assert_eq!(
            event.subject().unwrap().as_str(),
            "feed:so/https://stackoverflow.com/q/1"
        );
        let bad = RawDelivery::new("so-feed", http::HeaderMap::new(), &b"{}"[..]);
        assert!(provider.parse(&bad).is_err());
        assert!(provider.identify(&bad).is_err());
        let long = "x".repeat(300);
        assert!(delivery_id(&long).as_str().starts_with("sha256:"));
        assert_eq!(delivery_id(&long), delivery_id(&long));
    }
}
