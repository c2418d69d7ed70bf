//! Atom 1.0 (RFC 4287), RSS 2.0 and RSS 1.0 (RDF) entries, read with a pull parser.
//!
//! Only what a task needs is read: an id, the title, the link, a summary, the author, the
//! dates and the categories. Unknown elements are ignored, and so are the children of an
//! Atom entry's `source` (the feed an entry was copied from).

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

/// One entry of a feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedEntry {
    /// Atom `id`, RSS `guid`, RSS 1.0 `rdf:about`; else the link; else derived from the
    /// title and date.
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) link: Option<String>,
    /// Atom `summary` (else `content`), RSS `description` (else `content:encoded`); may be
    /// HTML.
    pub(crate) summary: Option<String>,
    pub(crate) author: Option<String>,
    pub(crate) published: Option<OffsetDateTime>,
    pub(crate) updated: Option<OffsetDateTime>,
    pub(crate) categories: Vec<String>,
}

/// Why a document is not a feed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FeedError(String);

/// Element fields being collected inside an entry.
#[derive(Default)]
struct Builder {
    entry: ParsedEntry,
    guid: Option<String>,
    atom_id: Option<String>,
    about: Option<String>,
    /// The `rel="alternate"` (or rel-less) Atom link.
    alternate: Option<String>,
    other_link: Option<String>,
    rss_link: Option<String>,
    summary: Option<String>,
    content: Option<String>,
    dc_date: Option<OffsetDateTime>,
}

impl Builder {
    fn finish(mut self) -> ParsedEntry {
        let mut entry = std::mem::take(&mut self.entry);
        entry.link = self
            .alternate
            .or(self.rss_link)
            .or(self.other_link)
            .filter(|l| !l.is_empty());
        entry.summary = self
            .summary
            .or(self.content)
            .filter(|s| !s.trim().is_empty());
        if entry.published.is_none() && entry.updated.is_none() {
            entry.published = self.dc_date;
        }
        entry.title = entry.title.trim().to_owned();
        entry.id = self
            .atom_id
            .or(self.guid)
            .or(self.about)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| entry.link.clone())
            .unwrap_or_else(|| {
                let when = entry
                    .published
                    .or(entry.updated)
                    .and_then(|t| t.format(&Rfc3339).ok())
                    .unwrap_or_default();
                format!("title:{}@{when}", entry.title)
            });
        entry
    }
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|a| local(a.key.as_ref()) == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// A date as feeds write them: RFC 3339 (Atom, Dublin Core) or RFC 2822 (RSS), also with a
/// named zone other than GMT/UT, which RFC 2822 calls obsolete but feeds still use.
pub(crate) fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc2822) {
        return Some(t);
    }
    // `Tue, 10 Jun 2003 04:00:00 EST`: replace a named US zone with its offset.
    let (head, zone) = text.rsplit_once(' ')?;
    let offset = match zone {
        "UTC" | "Z" => "+0000",
        "EST" => "-0500",
        "EDT" => "-0400",
        "CST" => "-0600",
        "CDT" => "-0500",
        "MST" => "-0700",
        "MDT" => "-0600",
        "PST" => "-0800",
        "PDT" => "-0700",
        _ => return None,
    };
    OffsetDateTime::parse(&format!("{head} {offset}"), &Rfc2822).ok()
}

/// The entries of an Atom or RSS document, in document order.
pub(crate) fn parse(xml: &str) -> Result<Vec<ParsedEntry>, FeedError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut root: Option<String> = None;
    let mut entries = Vec::new();
    // The open elements, by local name.
    let mut stack: Vec<String> = Vec::new();
    // The entry being read, and the stack depth of its element.
    let mut current: Option<(Builder, usize)> = None;
    // The text of the entry's child element being read.
    let mut text = String::new();
    loop {
        let event = reader.read_event().map_err(|e| {
            FeedError(format!(
                "not well-formed XML near byte {}: {e}",
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(element) => {
                let name = local(element.name().as_ref()).to_owned();
                if root.is_none() {
                    root = Some(name.clone());
                }
                open(&mut current, &stack, &name, &element, &mut text);
                stack.push(name);
            }
            Event::Empty(element) => {
                let name = local(element.name().as_ref()).to_owned();
                if root.is_none() {
                    root = Some(name.clone());
                }
                open(&mut current, &stack, &name, &element, &mut text);
                stack.push(name);
                close(&mut current, &mut stack, &mut entries, &mut text);
            }
            Event::End(_) => close(&mut current, &mut stack, &mut entries, &mut text),
            Event::Text(t) if current.is_some() => text.push_str(&t.xml10_content()),
            Event::CData(t) if current.is_some() => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if current.is_some() => match r.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                _ => match quick_xml::escape::resolve_predefined_entity(&r) {
                    Some(s) => text.push_str(s),
                    // An entity a DTD would define (`&nbsp;` in some RSS): kept as written.
                    None => {
                        text.push('&');
                        text.push_str(&r);
                        text.push(';');
                    }
                },
            },
            Event::Eof => break,
            _ => {}
        }
    }
    match root.as_deref() {
        Some("feed" | "rss" | "RDF") => Ok(entries),
        Some(other) => Err(FeedError(format!(
            "not an Atom or RSS feed: the root element is <{other}>"
        ))),
        None => Err(FeedError("an empty document".into())),
    }
}

fn open(
    current: &mut Option<(Builder, usize)>,
    stack: &[String],
    name: &str,
    element: &BytesStart<'_>,
    text: &mut String,
) {
    let depth = stack.len();
    match current {
        None if matches!(name, "entry" | "item") => {
            let builder = Builder {
                about: attribute(element, "about"),
                ..Builder::default()
            };
            *current = Some((builder, depth));
        }
        Some((builder, entry_depth)) if depth == *entry_depth + 1 => {
            text.clear();
            match name {
                "link" => {
                    if let Some(href) = attribute(element, "href") {
                        match attribute(element, "rel").as_deref() {
                            None | Some("alternate") => {
                                builder.alternate.get_or_insert(href);
                            }
                            Some(_) => {
                                builder.other_link.get_or_insert(href);
                            }
                        }
                    }
                }
                "category" => {
                    if let Some(term) = attribute(element, "term") {
                        builder.entry.categories.push(term);
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

fn close(
    current: &mut Option<(Builder, usize)>,
    stack: &mut Vec<String>,
    entries: &mut Vec<ParsedEntry>,
    text: &mut String,
) {
    let Some(name) = stack.pop() else {
        return;
    };
    let depth = stack.len();
    let Some((builder, entry_depth)) = current else {
        return;
    };
    if depth == *entry_depth {
        if let Some((builder, _)) = current.take() {
            entries.push(builder.finish());
        }
        return;
    }
    if depth == *entry_depth + 2 && name == "name" && stack.last().is_some_and(|p| p == "author") {
        // Atom's `<author><name>`: the name alone, not the email and URI around it.
        builder.entry.author = Some(text.trim().to_owned());
        text.clear();
        return;
    }
    if depth != *entry_depth + 1 {
        return;
    }
    let value = std::mem::take(text);
    let trimmed = value.trim();
    let entry = &mut builder.entry;
    match name.as_str() {
        "title" => entry.title = trimmed.to_owned(),
        "id" => builder.atom_id = Some(trimmed.to_owned()),
        "guid" => builder.guid = Some(trimmed.to_owned()),
        "link" if !trimmed.is_empty() => builder.rss_link = Some(trimmed.to_owned()),
        "summary" | "description" => builder.summary = Some(value.trim().to_owned()),
        "content" | "encoded" => builder.content = Some(value.trim().to_owned()),
        "published" | "pubDate" | "issued" => entry.published = parse_date(trimmed),
        "updated" | "modified" => entry.updated = parse_date(trimmed),
        "date" => builder.dc_date = parse_date(trimmed),
        "author" | "creator" if entry.author.is_none() && !trimmed.is_empty() => {
            entry.author = Some(trimmed.to_owned());
        }
        "category" if !trimmed.is_empty() => entry.categories.push(trimmed.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// The shape of a Stack Overflow tag feed.
    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:creativeCommons="http://backend.userland.com/creativeCommonsRssModule" xmlns:re="http://purl.org/atompub/rank/1.0">
    <title type="text">Newest questions tagged metpy - Stack Overflow</title>
    <link rel="self" href="https://stackoverflow.com/feeds/tag?tagnames=metpy&amp;sort=newest" type="application/atom+xml" />
    <updated>2024-05-17T09:30:00Z</updated>
    <id>https://stackoverflow.com/feeds/tag?tagnames=metpy&amp;sort=newest</id>
    <entry>
        <id>https://stackoverflow.com/q/78491234</id>
        <re:rank scheme="https://stackoverflow.com">0</re:rank>
        <title type="text">Interpolating &lt;sounding&gt; data &amp; units with MetPy</title>
        <category scheme="https://stackoverflow.com/tags" term="python" />
        <category scheme="https://stackoverflow.com/tags" term="metpy" />
        <author>
            <name>Ann Example</name>
            <uri>https://stackoverflow.com/users/1/ann</uri>
        </author>
        <link rel="alternate" href="https://stackoverflow.com/questions/78491234/interpolating-sounding-data" />
        <published>2024-05-17T09:21:03Z</published>
        <updated>2024-05-17T09:25:00Z</updated>
        <summary type="html">&lt;p&gt;How do I interpolate?&lt;/p&gt;</summary>
        <source><id>elsewhere</id><title>Not this</title></source>
    </entry>
    <entry>
        <id>https://stackoverflow.com/q/78491001</id>
        <title type="text">Second question</title>
        <link href="https://stackoverflow.com/questions/78491001/second" />
        <published>2024-05-16T08:00:00Z</published>
        <updated>2024-05-16T08:00:00Z</updated>
        <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Some <b>bold</b> text</div></content>
    </entry>
</feed>"#;

    const RSS: &str = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>Example</title>
    <link>https://example.org/</link>
    <item>
      <title>First &#x2013; post</title>
      <link>https://example.org/1</link>
      <guid isPermaLink="false">post-1</guid>
      <pubDate>Fri, 17 May 2024 09:21:03 GMT</pubDate>
      <dc:creator>Bob</dc:creator>
      <category>news</category>
      <description><![CDATA[<p>Hello <em>world</em></p>]]></description>
    </item>
    <item>
      <title>No guid</title>
      <link>https://example.org/2</link>
      <pubDate>Tue, 10 Jun 2003 04:00:00 EST</pubDate>
    </item>
  </channel>
</rss>"#;

    #[test]
    fn reads_atom() {
        let entries = parse(ATOM).unwrap();
        assert_eq!(entries.len(), 2);
        let first = &entries[0];
        assert_eq!(first.id, "https://stackoverflow.com/q/78491234");
        assert_eq!(
            first.title,
            "Interpolating <sounding> data & units with MetPy"
        );
        assert_eq!(
            first.link.as_deref(),
            Some("https://stackoverflow.com/questions/78491234/interpolating-sounding-data")
        );
        assert_eq!(first.author.as_deref(), Some("Ann Example"));
        assert_eq!(first.categories, vec!["python", "metpy"]);
        assert_eq!(first.published, Some(datetime!(2024-05-17 09:21:03 UTC)));
        assert_eq!(first.updated, Some(datetime!(2024-05-17 09:25:00 UTC)));
        assert_eq!(
            first.summary.as_deref(),
            Some("<p>How do I interpolate?</p>")
        );
        let second = &entries[1];
        assert_eq!(second.summary.as_deref(), Some("Some bold text"));
        assert_eq!(second.author, None);
    }

    #[test]
    fn reads_rss_2_and_1() {
        let entries = parse(RSS).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "post-1");
        assert_eq!(entries[0].title, "First \u{2013} post");
        assert_eq!(entries[0].link.as_deref(), Some("https://example.org/1"));
        assert_eq!(entries[0].author.as_deref(), Some("Bob"));
        assert_eq!(entries[0].categories, vec!["news"]);
        assert_eq!(
            entries[0].summary.as_deref(),
            Some("<p>Hello <em>world</em></p>")
        );
        assert_eq!(
            entries[0].published,
            Some(datetime!(2024-05-17 09:21:03 UTC))
        );
        // Without a guid, the link is the id.
        assert_eq!(entries[1].id, "https://example.org/2");
        assert_eq!(
            entries[1].published,
            Some(datetime!(2003-06-10 09:00:00 UTC))
        );

        let rdf = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
          <channel rdf:about="https://example.org/"><title>x</title></channel>
          <item rdf:about="https://example.org/a"><title>A</title><link>https://example.org/a</link><dc:date>2024-05-17T09:21:03+02:00</dc:date></item>
        </rdf:RDF>"#;
        let entries = parse(rdf).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, "https://example.org/a");
        assert_eq!(
            entries[0].published,
            Some(datetime!(2024-05-17 07:21:03 UTC))
        );
    }

    #[test]
    fn rejects_what_is_not_a_feed() {
        assert!(
            parse("<html><body>hi</body></html>")
                .unwrap_err()
                .to_string()
                .contains("<html>")
        );
        assert!(parse("").is_err());
        assert!(parse("<feed><entry><title>x</feed>").is_err());
        assert!(parse("{\"json\": true}").is_err());
        assert_eq!(parse("<feed/>").unwrap(), Vec::new());
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2024-05-17T09:21:03Z"),
            Some(datetime!(2024-05-17 09:21:03 UTC))
        );
        assert_eq!(
            parse_date("Fri, 17 May 2024 09:21:03 +0000"),
            Some(datetime!(2024-05-17 09:21:03 UTC))
        );
        assert_eq!(parse_date("yesterday"), None);
    }
}
