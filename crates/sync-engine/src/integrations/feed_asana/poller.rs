//! The feed poller: fetches the feed on an interval and stores each new entry as a
//! delivery of the feed's endpoint, moving its cursor in the same transaction.
//!
//! The cursor (JSON) holds a watermark, the newest entry date seen, and the ids of the
//! entries of the last document read. An entry is new when its id is not among those and
//! it is not older than the watermark less a look-back window (so an old entry that
//! reappears is not taken for a new one, while one published late, with a date a little in
//! the past, still is). Entries are stored under their id, so a poll that overlaps the last
//! one, or runs again after a crash before its cursor moved, stores nothing twice; and the
//! rule links each entry to its task, which stops a duplicate task even if the inbox were
//! pruned. The cursor moves only with a poll whose entries were stored. `ETag` and
//! `Last-Modified` are sent back, so an unchanged feed costs a 304.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hookbridge_core::EndpointName;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::parse::{ParsedEntry, parse};
use super::provider::{FeedEntry, KIND};
use crate::engine::{Poll, PollError, Source};
use crate::store::NewDelivery;

/// Largest feed document read.
const MAX_BYTES: usize = 10 * 1024 * 1024;
/// Most entry ids kept in the cursor.
const MAX_SEEN: usize = 1000;

/// Where a feed poll resumes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The newest entry date seen.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) watermark: Option<OffsetDateTime>,
    /// The ids of the entries of the last document read.
    #[serde(default)]
    pub(crate) seen: Vec<String>,
    /// The feed's `ETag`, sent back as `If-None-Match`.
    #[serde(default)]
    pub(crate) etag: Option<String>,
    /// The feed's `Last-Modified`, sent back as `If-Modified-Since`.
    #[serde(default)]
    pub(crate) last_modified: Option<String>,
}

/// A feed poller (`<integration>:feed`).
pub(crate) struct FeedPoller {
    pub(crate) source: String,
    pub(crate) integration: String,
    pub(crate) endpoint: EndpointName,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) interval: Duration,
    pub(crate) since: Option<OffsetDateTime>,
    pub(crate) lookback: Duration,
}

impl std::fmt::Debug for FeedPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is left out: feed URLs may carry a private token.
        f.debug_struct("FeedPoller")
            .field("source", &self.source)
            .field("endpoint", &self.endpoint)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// What one document brings, given the cursor: the new entries and the next cursor.
pub(crate) fn select(
    entries: Vec<ParsedEntry>,
    cursor: &Cursor,
    since: Option<OffsetDateTime>,
    lookback: Duration,
) -> (Vec<ParsedEntry>, Cursor) {
    let seen: HashSet<&str> = cursor.seen.iter().map(String::as_str).collect();
    let floor = match (cursor.watermark, since) {
        (Some(w), Some(s)) => Some((w - lookback).max(s)),
        (Some(w), None) => Some(w - lookback),
        (None, s) => s,
    };
    let mut watermark = cursor.watermark;
    let mut ids = Vec::new();
    let mut taken: HashSet<String> = HashSet::new();
    let mut new = Vec::new();
    for entry in entries {
        let date = entry.published.or(entry.updated);
        if let Some(date) = date {
            watermark = Some(watermark.map_or(date, |w| w.max(date)));
        }
        if !ids.contains(&entry.id) {
            ids.push(entry.id.clone());
        }
        let old = matches!((floor, date), (Some(floor), Some(date)) if date <= floor);
        if seen.contains(entry.id.as_str()) || old || !taken.insert(entry.id.clone()) {
            continue;
        }
        new.push(entry);
    }
    ids.truncate(MAX_SEEN);
    let next = Cursor {
        watermark,
        seen: ids,
        etag: cursor.etag.clone(),
        last_modified: cursor.last_modified.clone(),
    };
    (new, next)
}

impl FeedPoller {
    fn error(&self, message: impl Into<String>) -> PollError {
        PollError {
            source_name: self.source.clone(),
            message: message.into(),
        }
    }

    /// The feed's host, for messages (never the whole URL).
    fn host(&self) -> String {
        reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "the feed".into())
    }

    /// Fetches the document; `None` when unchanged (304).
    async fn fetch(
        &self,
        cursor: &Cursor,
    ) -> Result<Option<(String, Option<String>, Option<String>)>, PollError> {
        let host = self.host();
        let mut request = self.http.get(&self.url).header(
            "accept",
            "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1",
        );
        if let Some(etag) = &cursor.etag {
            request = request.header("if-none-match", etag);
        }
        if let Some(modified) = &cursor.last_modified {
            request = request.header("if-modified-since", modified);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.error(format!("cannot fetch from {host}: {}", e.without_url())))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.error(format!("{host} answered {status}")));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header("etag");
        let last_modified = header("last-modified");
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.error(format!("cannot read from {host}: {}", e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(self.error(format!(
                    "the feed from {host} is larger than {MAX_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        let text = text.trim_start_matches('\u{feff}').to_owned();
        Ok(Some((text, etag, last_modified)))
    }

    fn delivery(&self, entry: ParsedEntry, now: OffsetDateTime) -> Result<NewDelivery, PollError> {
        let entry = FeedEntry {
            feed: self.integration.clone(),
            id: entry.id,
            title: entry.title,
            url: entry.link,
            summary: entry.summary,
            author: entry.author,
            published: entry.published,
            updated: entry.updated,
            categories: entry.categories,
        };
        let body = serde_json::to_vec(&entry)
            .map_err(|e| self.error(format!("cannot store an entry: {e}")))?;
        Ok(NewDelivery {
            endpoint: self.endpoint.clone(),
            provider: KIND.as_str().to_owned(),
            delivery_id: entry.delivery_id(),
            event_type: "entry".into(),
            headers: Vec::new(),
            body: Bytes::from(body),
            received_at: now,
        })
    }
}

#[async_trait]
impl Source for FeedPoller {
    fn name(&self) -> &str {
        &self.source
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn poll(&self, cursor: Option<String>) -> Result<Poll, PollError> {
        let current: Cursor = match &cursor {
            Some(text) => serde_json::from_str(text).unwrap_or_else(|error| {
                // Starting over only risks re-reading entries, which their ids deduplicate.
                tracing::warn!(source = %self.source, %error, "unreadable feed cursor; starting over");
                Cursor::default()
            }),
            None => Cursor::default(),
        };
        let Some((document, etag, last_modified)) = self.fetch(&current).await? else {
            tracing::debug!(source = %self.source, "feed unchanged");
            return Ok(Poll {
                deliveries: Vec::new(),
                cursor: cursor.unwrap_or_else(|| "{}".into()),
            });
        };
        let entries = parse(&document).map_err(|e| {
            self.error(format!(
                "the document from {} is not a feed: {e}",
                self.host()
            ))
        })?;
        let found = entries.len();
        let (new, mut next) = select(entries, &current, self.since, self.lookback);
        next.etag = etag;
        next.last_modified = last_modified;
        let now = OffsetDateTime::now_utc();
        let deliveries = new
            .into_iter()
            .map(|entry| self.delivery(entry, now))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::debug!(source = %self.source, found, new = deliveries.len(), "feed read");
        let cursor = serde_json::to_string(&next)
            .map_err(|e| self.error(format!("cannot write the cursor: {e}")))?;
        Ok(Poll { deliveries, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry(id: &str, at: OffsetDateTime) -> ParsedEntry {
        ParsedEntry {
            id: id.into(),
            title: id.into(),
            published: Some(at),
            ..ParsedEntry::default()
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn overlapping_documents_yield_each_entry_once() {
        let t = datetime!(2024-05-17 09:00 UTC);
        let first = vec![entry("b", t), entry("a", t - DAY)];
        let (new, cursor) = select(first, &Cursor::default(), None, DAY);
        assert_eq!(
            new.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(cursor.watermark, Some(t));
        assert_eq!(cursor.seen, ["b", "a"]);

        let second = vec![entry("c", t + DAY), entry("b", t), entry("a", t - DAY)];
        let (new, cursor) = select(second, &cursor, None, DAY);
        assert_eq!(new.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(cursor.watermark, Some(t + DAY));

        // The same document again: nothing new, same cursor.
        let again = vec![entry("c", t + DAY), entry("b", t), entry("a", t - DAY)];
        let (new, same) = select(again, &cursor, None, DAY);
        assert!(new.is_empty());
        assert_eq!(same, cursor);
    }

    #[test]
    fn old_reappearances_are_skipped_and_late_entries_are_not() {
        let t = datetime!(2024-05-17 09:00 UTC);
        let cursor = Cursor {
            watermark: Some(t),
            seen: vec!["x".into()],
            ..Cursor::default()
        };
        let doc = vec![
            entry("late", t - Duration::from_secs(3600)),
            entry("ancient", t - 30 * DAY),
            ParsedEntry {
                id: "undated".into(),
                ..ParsedEntry::default()
            },
            entry("dup", t),
            entry("dup", t),
        ];
        let (new, next) = select(doc, &cursor, None, DAY);
        assert_eq!(
            new.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["late", "undated", "dup"]
        );
        assert_eq!(next.seen, ["late", "ancient", "undated", "dup"]);
    }

    #[test]
    fn since_bounds_the_first_poll() {
        let t = datetime!(2024-05-17 09:00 UTC);
        let doc = vec![entry("new", t), entry("old", t - 2 * DAY)];
        let (new, _) = select(doc, &Cursor::default(), Some(t - DAY), DAY);
        assert_eq!(
            new.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
    }
}
