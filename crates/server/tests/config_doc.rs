//! `docs/configuration.md` (with `docs/integrations/*.md`) and the configuration types agree:
//! every key the types accept is documented, and every documented key is accepted.
//!
//! The keys come from the types themselves, not from a hand-kept list: serde's derive tells a
//! `deny_unknown_fields` struct's field names to `Error::unknown_field` and an enum's variant
//! names to `Error::unknown_variant`, so the test feeds each type small synthetic documents
//! (through a deserializer of its own whose error type records those calls) and walks down
//! from `ConfigFile`: sections, nested tables, arrays of tables, maps of tables, and enums
//! tagged by `kind`. Sections the file keeps as raw TOML until secrets are resolved
//! (`[connections.<name>]`, `[[rules]]`, `[[integrations]]`) are mapped to their types in
//! [`raw_sections`]; a new raw section fails the test until it is added there. Provider
//! options come from each provider's own option parser.
//!
//! The documentation's machine-readable part: a heading with a backticked section path
//! (``## `[server]` ``, ``### `[engine.rate_limits.<target>]` ``) and optionally a variant
//! (`` `kind = "github"` ``, `` `provider = "slack"` ``) starts a section; headings without
//! a path inherit their parent's. In a section, a table whose header starts with `key` lists
//! one key per row (first cell, backticked; dotted keys for nested tables); a table whose
//! header is `| kind | keys | ... |` lists the keys of each kind. A nested table may instead
//! be documented by one row naming all of its keys (e.g. ``list of `{ repo, project }` ``).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use hookbridge_server::config::{ConfigFile, EndpointSection};
use hookbridge_server::connections::ConnectionSection;
use hookbridge_sync_engine::engine::RuleSpec;
use hookbridge_sync_engine::integrations::IntegrationConfig;
use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

// ---- probing the types ----

/// A key no type has.
const PROBE: &str = "__hookbridge_probe__";

/// A synthetic TOML-like document.
#[derive(Clone, Debug)]
enum V {
    Map(Vec<(String, V)>),
    Seq(Vec<V>),
    Str(String),
    Unit,
}

/// What deserializing a synthetic document told about the type.
#[derive(Debug)]
enum Found {
    Accepted,
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    UnknownVariant(&'static [&'static str]),
    MissingField(&'static str),
    InvalidType {
        unexpected: String,
        expected: String,
    },
    Other(#[allow(dead_code)] String),
}

#[derive(Debug)]
struct ProbeError(Found);

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for ProbeError {}

impl serde::de::Error for ProbeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ProbeError(Found::Other(msg.to_string()))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        ProbeError(Found::UnknownField {
            field: field.to_owned(),
            expected,
        })
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        ProbeError(Found::UnknownVariant(expected))
    }

    fn missing_field(field: &'static str) -> Self {
        ProbeError(Found::MissingField(field))
    }

    fn invalid_type(
        unexpected: serde::de::Unexpected<'_>,
        expected: &dyn serde::de::Expected,
    ) -> Self {
        ProbeError(Found::InvalidType {
            unexpected: unexpected.to_string(),
            expected: expected.to_string(),
        })
    }
}

impl<'de> serde::Deserializer<'de> for V {
    type Error = ProbeError;

    fn deserialize_any<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, ProbeError> {
        match self {
            V::Map(entries) => {
                let mut map = MapDeserializer::new(entries.into_iter());
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
            V::Seq(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            V::Str(s) => visitor.visit_string(s),
            V::Unit => visitor.visit_unit(),
        }
    }

    fn deserialize_option<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, ProbeError> {
        match self {
            V::Unit => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<W: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: W,
    ) -> Result<W::Value, ProbeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<W: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: W,
    ) -> Result<W::Value, ProbeError> {
        match self {
            V::Str(s) => visitor.visit_enum(IntoDeserializer::<ProbeError>::into_deserializer(s)),
            V::Map(entries) => {
                visitor.visit_enum(MapAccessDeserializer::new(
                    MapDeserializer::<_, ProbeError>::new(entries.into_iter()),
                ))
            }
            other => other.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl IntoDeserializer<'_, ProbeError> for V {
    type Deserializer = V;

    fn into_deserializer(self) -> V {
        self
    }
}

fn probe<T: DeserializeOwned>(document: V) -> Found {
    match T::deserialize(document) {
        Ok(_) => Found::Accepted,
        Err(ProbeError(found)) => found,
    }
}

/// A step down a synthetic document: a key, an array element, or an enum's tag.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Elem,
    Tag(&'static str, String),
}

fn probe_leaf() -> V {
    V::Map(vec![(PROBE.into(), V::Unit)])
}

/// The document reaching `leaf` down `path`.
fn build(path: &[Step], leaf: V) -> V {
    match path.split_first() {
        None => leaf,
        Some((Step::Key(k), rest)) => V::Map(vec![(k.clone(), build(rest, leaf))]),
        Some((Step::Elem, rest)) => V::Seq(vec![build(rest, leaf)]),
        Some((Step::Tag(tag, variant), rest)) => {
            let mut entries = vec![(tag.to_string(), V::Str(variant.clone()))];
            match build(rest, leaf) {
                V::Map(more) => entries.extend(more),
                other => panic!("a tag must be followed by a table, not {other:?}"),
            }
            V::Map(entries)
        }
    }
}

/// The shape of a configuration value.
#[derive(Clone, Debug)]
enum Node {
    /// A table with these keys.
    Table(Vec<(String, Node)>),
    /// A table tagged by `tag`: the variants and their tables.
    Tagged(&'static str, Vec<(String, Node)>),
    /// An array of these.
    Array(Box<Node>),
    /// A table of these by name.
    Named(Box<Node>),
    /// A value: a string, number, list of strings, free-form table...
    Value,
    /// A table whose keys serde does not list (a flattened struct).
    Opaque,
}

impl Node {
    /// A table or several: documented by sections or nested keys.
    fn is_structured(&self) -> bool {
        match self {
            Node::Table(_) | Node::Tagged(..) | Node::Opaque => true,
            Node::Array(inner) | Node::Named(inner) => inner.is_structured(),
            Node::Value => false,
        }
    }
}

fn with(path: &[Step], step: Step) -> Vec<Step> {
    let mut p = path.to_vec();
    p.push(step);
    p
}

/// The shape of what `T` accepts at `path`.
fn explore<T: DeserializeOwned>(path: &[Step]) -> Node {
    if path.len() > 12 {
        return Node::Value;
    }
    match probe::<T>(build(path, probe_leaf())) {
        Found::UnknownField { field, expected } if field == PROBE => Node::Table(
            expected
                .iter()
                .map(|f| {
                    (
                        f.to_string(),
                        explore::<T>(&with(path, Step::Key(f.to_string()))),
                    )
                })
                .collect(),
        ),
        Found::MissingField(tag) => {
            // An internally tagged enum asks for its tag before anything else.
            let tagged = with(path, Step::Tag(tag, PROBE.into()));
            match probe::<T>(build(&tagged, V::Map(Vec::new()))) {
                Found::UnknownVariant(variants) => Node::Tagged(
                    tag,
                    variants
                        .iter()
                        .map(|v| {
                            let at = with(path, Step::Tag(tag, v.to_string()));
                            (v.to_string(), explore::<T>(&at))
                        })
                        .collect(),
                ),
                _ => Node::Opaque,
            }
        }
        Found::InvalidType { expected, .. } if expected.contains("sequence") => {
            let inner = explore::<T>(&with(path, Step::Elem));
            if inner.is_structured() {
                Node::Array(Box::new(inner))
            } else {
                Node::Value
            }
        }
        // A map took the probe key, and its value type refused the unit value.
        Found::InvalidType { unexpected, .. } if unexpected == "unit value" => {
            let inner = explore::<T>(&with(path, Step::Key("<name>".into())));
            if inner.is_structured() {
                Node::Named(Box::new(inner))
            } else {
                Node::Value
            }
        }
        _ => Node::Value,
    }
}

/// The names of a table's keys and, for a tagged table, of every variant's.
/// A table's keys with their shapes.
type Fields = Vec<(String, Node)>;

fn keys_of(node: &Node) -> Vec<(Option<String>, Fields)> {
    match node {
        Node::Table(fields) => vec![(None, fields.clone())],
        Node::Tagged(_, variants) => variants
            .iter()
            .flat_map(|(v, n)| {
                keys_of(n)
                    .into_iter()
                    .map(move |(_, fields)| (Some(v.clone()), fields))
            })
            .collect(),
        Node::Array(inner) | Node::Named(inner) => keys_of(inner),
        Node::Value | Node::Opaque => Vec::new(),
    }
}

/// A key the types accept: its dotted path (`*` for a name), the variants it belongs to, its
/// shape, and its tag key when it is a tagged table.
#[derive(Clone, Debug)]
struct TypeKey {
    path: String,
    variants: Vec<String>,
    node: Node,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Every key below `node`, which sits at `prefix` (a named table's `*` included).
fn flatten(prefix: &str, variants: &[String], node: &Node, out: &mut Vec<TypeKey>) {
    let prefix = match node {
        Node::Named(_) => join(prefix, "*"),
        _ => prefix.to_owned(),
    };
    for (variant, fields) in keys_of(node) {
        let mut vs = variants.to_vec();
        vs.extend(variant);
        for (name, child) in fields {
            let path = join(&prefix, &name);
            out.push(TypeKey {
                path: path.clone(),
                variants: vs.clone(),
                node: child.clone(),
            });
            flatten(&path, &vs, &child, out);
        }
    }
}

/// Top-level keys the file keeps as raw TOML (secrets resolved first), with the type each
/// is read into, and keys the loader takes out before that type sees the table.
fn raw_sections() -> BTreeMap<&'static str, (Node, &'static [&'static str])> {
    BTreeMap::from([
        (
            "connections",
            (
                Node::Named(Box::new(explore::<ConnectionSection>(&[]))),
                &[][..],
            ),
        ),
        (
            "rules",
            (Node::Array(Box::new(explore::<RuleSpec>(&[]))), &[][..]),
        ),
        (
            "integrations",
            (
                Node::Array(Box::new(explore::<IntegrationConfig>(&[]))),
                &["name"][..],
            ),
        ),
        // Checked on its own: provider options are the provider's (see `provider_options`).
        ("endpoints", (Node::Named(Box::new(Node::Opaque)), &[][..])),
    ])
}

/// Every key of the configuration, by probing the types.
fn type_keys() -> (Vec<TypeKey>, Vec<String>) {
    let Node::Table(sections) = explore::<ConfigFile>(&[]) else {
        panic!("ConfigFile is not a table with deny_unknown_fields");
    };
    let raw = raw_sections();
    let mut problems = Vec::new();
    let mut keys = Vec::new();
    for name in raw.keys() {
        if !sections.iter().any(|(s, _)| s == name) {
            problems.push(format!(
                "raw_sections() names `{name}`, which ConfigFile no longer has"
            ));
        }
    }
    for (name, node) in sections {
        let node = match raw.get(name.as_str()) {
            Some((typed, extra)) => {
                for key in *extra {
                    keys.push(TypeKey {
                        path: join(&name, key),
                        variants: Vec::new(),
                        node: Node::Value,
                    });
                }
                typed.clone()
            }
            None if node.is_structured() => node,
            None => {
                problems.push(format!(
                    "ConfigFile's `{name}` is kept as raw TOML: add the type it is read into to \
                     raw_sections() in crates/server/tests/config_doc.rs"
                ));
                continue;
            }
        };
        keys.push(TypeKey {
            path: name.clone(),
            variants: Vec::new(),
            node: node.clone(),
        });
        flatten(&name, &[], &node, &mut keys);
    }
    (keys, problems)
}

/// Each provider kind's options, from its option parser's `unknown field` error.
fn provider_options() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for kind in hookbridge_providers::kinds() {
        let mut options = toml::Table::new();
        options.insert(PROBE.into(), toml::Value::Integer(1));
        let mut message = String::new();
        for secrets in [
            vec![hookbridge_core::Secret::new("probe-secret-0123456789")],
            vec![],
        ] {
            if let Err(e) = hookbridge_providers::build(kind, secrets, options.clone()) {
                message = e.to_string();
                if message.contains(PROBE) {
                    break;
                }
            }
        }
        let marker = format!("unknown field `{PROBE}`");
        let at = message.find(&marker).unwrap_or_else(|| {
            panic!("provider {kind} did not refuse an unknown option: {message}")
        });
        // serde's list: "expected `a`", "expected `a` or `b`", "expected one of `a`, `b`",
        // "there are no fields".
        let rest = &message[at + marker.len()..];
        let names = backticked(rest).into_iter().collect();
        out.insert(kind.to_string(), names);
    }
    out
}

// ---- reading the documentation ----

/// A key the documentation lists.
#[derive(Debug)]
struct DocKey {
    path: String,
    variant: Option<String>,
    /// The row, for nested keys named in it.
    text: String,
    at: String,
}

#[derive(Default, Debug)]
struct Doc {
    keys: Vec<DocKey>,
    /// Sections: (path, variant).
    sections: BTreeSet<(String, Option<String>)>,
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect()
}

fn is_key_path(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|seg| {
            (seg.starts_with('<') && seg.ends_with('>') && seg.len() > 2)
                || (seg
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        })
}

/// `engine.rate_limits.<target>` -> `engine.rate_limits.*`.
fn normalize(path: &str) -> String {
    path.split('.')
        .map(|seg| if seg.starts_with('<') { "*" } else { seg })
        .collect::<Vec<_>>()
        .join(".")
}

/// A heading's section path (`[server]`, `[[rules]]`, `[connections.<name>]`) and variant
/// (`kind = "github"`), if it has them.
fn heading_parts(heading: &str) -> (Option<String>, Option<String>) {
    let mut path = None;
    for token in backticked(heading) {
        let inner = token.trim_start_matches('[').trim_end_matches(']');
        if token.starts_with('[') && token.ends_with(']') && is_key_path(inner) {
            path = Some(normalize(inner));
            break;
        }
    }
    let variant = heading.find(" = \"").and_then(|at| {
        let rest = &heading[at + 4..];
        rest.find('"').map(|end| rest[..end].to_owned())
    });
    (path, variant)
}

fn cells(line: &str) -> Vec<String> {
    let line = line.trim().trim_start_matches('|').trim_end_matches('|');
    line.split('|').map(|c| c.trim().to_owned()).collect()
}

/// Text outside parentheses (defaults and remarks in a `keys` cell).
fn outside_parentheses(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                if depth == 0 {
                    out.push(c);
                }
            }
            '(' if !in_code => depth += 1,
            ')' if !in_code => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn read_doc(file: &Path, root: Option<&str>, doc: &mut Doc) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    // (level, path, variant) of the enclosing headings.
    let mut stack: Vec<(usize, Option<String>, Option<String>)> =
        vec![(0, root.map(str::to_owned), None)];
    let mut fenced = false;
    let mut table: Vec<&str> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if line.starts_with('#') {
            let level = line.chars().take_while(|c| *c == '#').count();
            let (path, variant) = heading_parts(line);
            while stack.last().is_some_and(|(l, _, _)| *l >= level) {
                stack.pop();
            }
            let (_, parent_path, parent_variant) = stack.last().cloned().unwrap_or((0, None, None));
            let (path, variant) = match path {
                Some(p) => (Some(p), variant),
                None => (parent_path, variant.or(parent_variant)),
            };
            if let Some(p) = &path {
                doc.sections.insert((p.clone(), variant.clone()));
            }
            stack.push((level, path, variant));
            continue;
        }
        if line.starts_with('|') {
            table.push(line);
            let ends = lines.get(i + 1).is_none_or(|next| !next.starts_with('|'));
            if !ends {
                continue;
            }
        } else {
            continue;
        }
        let rows = std::mem::take(&mut table);
        let Some((_, Some(section), section_variant)) = stack.last().cloned() else {
            continue;
        };
        let header = cells(rows[0]);
        let first = header[0].to_ascii_lowercase();
        let kinds_table = first == "kind"
            && header
                .get(1)
                .is_some_and(|h| h.eq_ignore_ascii_case("keys"));
        if first != "key" && !kinds_table {
            continue;
        }
        for row in rows.iter().skip(2) {
            let c = cells(row);
            let at = format!("{name}: {}", row.chars().take(60).collect::<String>());
            if kinds_table {
                let Some(variant) = backticked(&c[0]).into_iter().next() else {
                    continue;
                };
                let keys = c.get(1).map(|k| outside_parentheses(k)).unwrap_or_default();
                for key in backticked(&keys).into_iter().filter(|k| is_key_path(k)) {
                    doc.keys.push(DocKey {
                        path: join(&section, &normalize(&key)),
                        variant: Some(variant.clone()),
                        text: row.to_string(),
                        at: at.clone(),
                    });
                }
                doc.sections.insert((section.clone(), Some(variant)));
            } else {
                for key in backticked(&c[0]).into_iter().filter(|k| is_key_path(k)) {
                    doc.keys.push(DocKey {
                        path: join(&section, &normalize(&key)),
                        variant: section_variant.clone(),
                        text: row.to_string(),
                        at: at.clone(),
                    });
                }
            }
        }
    }
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn read_docs() -> Doc {
    let mut doc = Doc::default();
    read_doc(&docs_dir().join("configuration.md"), None, &mut doc);
    let integrations = docs_dir().join("integrations");
    if let Ok(entries) = std::fs::read_dir(&integrations) {
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        files.sort();
        for file in files {
            read_doc(&file, Some("integrations"), &mut doc);
        }
    }
    doc
}

// ---- comparing ----

fn variant_matches(doc: &Option<String>, types: &[String]) -> bool {
    match doc {
        None => types.is_empty(),
        Some(v) => types.contains(v),
    }
}

fn documented_row<'a>(doc: &'a Doc, key: &TypeKey) -> Option<&'a DocKey> {
    doc.keys
        .iter()
        .find(|d| d.path == key.path && variant_matches(&d.variant, &key.variants))
}

fn mentions_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        boundary(before) && boundary(after)
    })
}

/// Whether `key` is documented: its own row, or (a table) all of its keys documented, or a
/// row for it naming all of its keys.
fn is_documented(doc: &Doc, all: &[TypeKey], key: &TypeKey) -> bool {
    let row = documented_row(doc, key);
    if !key.node.is_structured() || matches!(key.node, Node::Opaque) {
        return row.is_some();
    }
    let children: Vec<&TypeKey> = all
        .iter()
        .filter(|k| {
            k.path
                .strip_prefix(&key.path)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|rest| {
                    let rest = rest.strip_prefix("*.").unwrap_or(rest);
                    !rest.contains('.')
                })
                && k.variants.starts_with(&key.variants)
        })
        .collect();
    if children.is_empty() {
        return row.is_some();
    }
    if children.iter().all(|c| is_documented(doc, all, c)) {
        return true;
    }
    row.is_some_and(|r| {
        children.iter().all(|c| {
            let name = c.path.rsplit('.').next().unwrap_or_default();
            mentions_word(&r.text, name) || is_documented(doc, all, c)
        })
    })
}

#[test]
fn the_configuration_reference_documents_every_key_and_only_real_keys() {
    let (keys, mut problems) = type_keys();
    let doc = read_docs();
    assert!(
        keys.iter().any(|k| k.path == "server.listen")
            && keys
                .iter()
                .any(|k| k.path == "engine.rate_limits.*.per_second")
            && keys
                .iter()
                .any(|k| k.path == "connections.*.token" && k.variants == ["github"])
            && keys
                .iter()
                .any(|k| k.path == "rules.action.url" && k.variants == ["http"]),
        "the probe no longer finds the keys it should: {keys:#?}"
    );
    problems.extend(compare(&keys, &doc));
    check_endpoints(&doc, &mut problems);
    assert!(
        problems.is_empty(),
        "docs/configuration.md and the configuration types disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// What is accepted but not documented, and documented but not accepted (endpoints aside).
fn compare(keys: &[TypeKey], doc: &Doc) -> Vec<String> {
    let mut problems = Vec::new();
    // Every key of the types is documented.
    for key in keys {
        if key.path.starts_with("endpoints") {
            continue;
        }
        // A table is documented by its own keys (checked one by one), unless a row names it.
        if key.node.is_structured() && !matches!(key.node, Node::Opaque) {
            if !is_documented(doc, keys, key) {
                // `[engine.rate_limits.<target>]` is the section of `engine.rate_limits`.
                let named = join(&key.path, "*");
                let section_exists = doc.sections.iter().any(|(p, v)| {
                    (p == &key.path || p == &named) && variant_matches(v, &key.variants)
                });
                if !section_exists && documented_row(doc, key).is_none() {
                    problems.push(format!(
                        "`{}`{} is not documented",
                        key.path,
                        variant_note(&key.variants)
                    ));
                }
            }
            continue;
        }
        if documented_row(doc, key).is_some() {
            continue;
        }
        // Documented inline by the row of an enclosing table.
        let inline = ancestors(&key.path).any(|parent| {
            doc.keys.iter().any(|d| {
                d.path == parent
                    && variant_matches(&d.variant, &key.variants)
                    && mentions_word(&d.text, key.path.rsplit('.').next().unwrap_or_default())
            })
        });
        if !inline {
            problems.push(format!(
                "`{}`{} is accepted by the configuration but not documented",
                key.path,
                variant_note(&key.variants)
            ));
        }
    }

    // Every documented key exists.
    let tags: BTreeSet<String> = tag_keys(keys);
    for d in &doc.keys {
        if d.path.starts_with("endpoints.") {
            continue;
        }
        let known = keys.iter().any(|k| {
            k.path == d.path
                && (d.variant.is_none() && k.variants.is_empty()
                    || d.variant.as_ref().is_some_and(|v| k.variants.contains(v)))
        });
        let is_tag = tags.contains(&d.path);
        if !known && !is_tag {
            problems.push(format!(
                "`{}`{} is documented ({}) but the configuration does not accept it",
                d.path,
                variant_note(d.variant.as_slice()),
                d.at
            ));
        }
    }

    problems
}

fn variant_note(variants: &[String]) -> String {
    if variants.is_empty() {
        String::new()
    } else {
        format!(" (kind {})", variants.join(" / "))
    }
}

/// `a.b.c` -> `a.b`, `a`.
fn ancestors(path: &str) -> impl Iterator<Item = String> + '_ {
    let parts: Vec<&str> = path.split('.').collect();
    (1..parts.len()).rev().map(move |n| {
        let p = parts[..n].join(".");
        p.strip_suffix(".*").map(str::to_owned).unwrap_or(p)
    })
}

/// `connections.*.kind`, `rules.action.kind`, ...: the tag keys, documented like keys.
fn tag_keys(keys: &[TypeKey]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut visit = |prefix: &str, node: &Node| {
        let prefix = match node {
            Node::Named(_) => join(prefix, "*"),
            _ => prefix.to_owned(),
        };
        let mut inner = node;
        while let Node::Array(n) | Node::Named(n) = inner {
            inner = n;
        }
        if let Node::Tagged(tag, _) = inner {
            out.insert(join(&prefix, tag));
        }
    };
    for k in keys {
        visit(&k.path, &k.node);
    }
    out
}

/// `[endpoints.<name>]`: its own keys are real fields of `EndpointSection` (a flattened
/// struct, so serde cannot list them), and each provider's section lists exactly the options
/// that provider accepts.
fn check_endpoints(doc: &Doc, problems: &mut Vec<String>) {
    let own: Vec<&DocKey> = doc
        .keys
        .iter()
        .filter(|d| d.variant.is_none() && d.path.starts_with("endpoints.*."))
        .collect();
    // A flattened struct hands unknown keys to its options table; its own fields refuse a
    // value of the wrong type.
    let wrong_type = V::Seq(vec![V::Seq(Vec::new()), V::Seq(Vec::new())]);
    for d in &own {
        let key = d.path.trim_start_matches("endpoints.*.");
        let document = V::Map(vec![
            ("provider".into(), V::Str("github".into())),
            (key.into(), wrong_type.clone()),
        ]);
        let found = if key == "provider" {
            probe::<EndpointSection>(V::Map(vec![(key.into(), wrong_type.clone())]))
        } else {
            probe::<EndpointSection>(document)
        };
        if matches!(found, Found::Accepted) {
            problems.push(format!(
                "`{}` is documented as an endpoint key, but EndpointSection has no such field",
                d.path
            ));
        }
    }
    if let Found::MissingField(required) = probe::<EndpointSection>(V::Map(Vec::new()))
        && !own.iter().any(|d| d.path == join("endpoints.*", required))
    {
        problems.push(format!("`endpoints.*.{required}` is not documented"));
    }
    for (kind, options) in provider_options() {
        let variant = Some(kind.clone());
        if !doc
            .sections
            .contains(&("endpoints.*".to_owned(), variant.clone()))
        {
            problems.push(format!(
                "provider `{kind}` has no section (`provider = \"{kind}\"`) under `[endpoints.<name>]`"
            ));
        }
        let documented: BTreeSet<String> = doc
            .keys
            .iter()
            .filter(|d| d.variant == variant && d.path.starts_with("endpoints.*."))
            .map(|d| d.path.trim_start_matches("endpoints.*.").to_owned())
            .collect();
        for missing in options.difference(&documented) {
            problems.push(format!(
                "provider `{kind}` accepts option `{missing}`, which is not documented"
            ));
        }
        for extra in documented.difference(&options) {
            problems.push(format!(
                "provider `{kind}`: option `{extra}` is documented but not accepted"
            ));
        }
    }
}

// ---- the checker's own checks ----

#[test]
fn the_probe_reads_serde_shapes() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: u32,
        b: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Tagged {
        One { x: String },
        Two { y: Vec<Inner> },
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        plain: String,
        table: Inner,
        optional: Option<Inner>,
        list: Vec<Inner>,
        named: BTreeMap<String, Inner>,
        strings: Vec<String>,
        tagged: Tagged,
        raw: toml::Table,
    }
    let mut keys = Vec::new();
    flatten("", &[], &explore::<Outer>(&[]), &mut keys);
    let listed: Vec<String> = keys
        .iter()
        .map(|k| format!("{}{}", k.path, variant_note(&k.variants)))
        .collect();
    assert_eq!(
        listed,
        [
            "plain",
            "table",
            "table.a",
            "table.b",
            "optional",
            "optional.a",
            "optional.b",
            "list",
            "list.a",
            "list.b",
            "named",
            "named.*.a",
            "named.*.b",
            "strings",
            "tagged",
            "tagged.x (kind one)",
            "tagged.y (kind two)",
            "tagged.y.a (kind two)",
            "tagged.y.b (kind two)",
            "raw",
        ]
    );
    assert!(
        matches!(keys[19].node, Node::Value),
        "a raw table is a value"
    );

    let text = "# T\n\n## `[s]`\n\n| key | meaning |\n|---|---|\n| `a` | x |\n| `n.m` | y |\n\n\
                ```toml\n# not a heading\n```\n\n### `[s.t]` `kind = \"k\"`\n\n| kind | keys | notes |\n\
                |---|---|---|\n| `k` | `p` (default `q`), `r` | `z` |\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.md");
    std::fs::write(&file, text).unwrap();
    let mut doc = Doc::default();
    read_doc(&file, None, &mut doc);
    let found: Vec<(String, Option<String>)> = doc
        .keys
        .iter()
        .map(|d| (d.path.clone(), d.variant.clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("s.a".to_owned(), None),
            ("s.n.m".to_owned(), None),
            ("s.t.p".to_owned(), Some("k".to_owned())),
            ("s.t.r".to_owned(), Some("k".to_owned())),
        ]
    );
}

#[test]
fn a_missing_or_made_up_key_is_reported() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limit {
        per_second: f64,
        burst: u32,
    }
    #[derive(serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Action {
        Http { url: String },
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Section {
        listen: String,
        limits: BTreeMap<String, Limit>,
        action: Action,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        server: Section,
    }
    let mut keys = Vec::new();
    let Node::Table(sections) = explore::<File>(&[]) else {
        panic!()
    };
    for (name, node) in sections {
        keys.push(TypeKey {
            path: name.clone(),
            variants: Vec::new(),
            node: node.clone(),
        });
        flatten(&name, &[], &node, &mut keys);
    }
    let check = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.md");
        std::fs::write(&file, text).unwrap();
        let mut doc = Doc::default();
        read_doc(&file, None, &mut doc);
        compare(&keys, &doc)
    };
    let complete = "## `[server]`\n\n| key | d |\n|---|---|\n| `listen` | x |\n\n\
                    ### `[server.limits.<target>]`\n\n| key | d |\n|---|---|\n| `per_second` | x |\n| `burst` | y |\n\n\
                    ### `[server.action]`\n\n| kind | keys | notes |\n|---|---|---|\n| `http` | `url` | z |\n";
    assert_eq!(check(complete), Vec::<String>::new());
    // One row naming the nested keys documents them too.
    let inline = "## `[server]`\n\n| key | d |\n|---|---|\n| `listen` | x |\n\
                  | `limits` | `{ per_second, burst }` by target |\n| `action` | `{ kind = \"http\", url }` |\n";
    let problems = check(inline);
    assert_eq!(
        problems,
        ["`server.action.url` (kind http) is accepted by the configuration but not documented"],
        "a tagged table needs its kind"
    );
    let missing = complete.replace("| `burst` | y |\n", "");
    assert_eq!(
        check(&missing),
        ["`server.limits.*.burst` is accepted by the configuration but not documented"]
    );
    let made_up = complete.replace("| `listen` | x |", "| `listen` | x |\n| `listne` | typo |");
    let problems = check(&made_up);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("`server.listne` is documented"),
        "{problems:?}"
    );
    let wrong_kind = complete.replace("| `http` | `url` | z |", "| `http` | `url`, `uri` | z |");
    assert_eq!(check(&wrong_kind).len(), 1);
}
