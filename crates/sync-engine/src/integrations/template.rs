//! `{placeholder}` texts shared by the integrations (issue titles, task notes, chat
//! messages): parsed once when the configuration is read, so a typo is a configuration error
//! naming the placeholder rather than a literal `{titel}` in every message.
//!
//! `{name}` is a placeholder, `{{` and `}}` are literal braces. Each integration says which
//! names exist (and what they resolve to) through the closure given to [`Template::parse`].

/// A parsed template whose placeholders resolved to `F` (a name, an enum of values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template<F> {
    parts: Vec<Part<F>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part<F> {
    Text(String),
    Field(F),
}

impl<F> Template<F> {
    /// Parses `text`; `field` resolves a placeholder's name (trimmed) or says why it is not
    /// one (e.g. the list of known names).
    pub(crate) fn parse(
        text: &str,
        field: impl Fn(&str) -> Result<F, String>,
    ) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(format!(
                                    "`{{{name}` is not closed (write `{{{{` for a literal brace)"
                                ));
                            }
                        }
                    }
                    let resolved = field(name.trim())?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(resolved));
                }
                '}' => return Err("a lone `}` (write `}}` for a literal brace)".into()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// The placeholders used, in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &F> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f),
            Part::Text(_) => None,
        })
    }

    /// The text, with each placeholder replaced by `value(field)`.
    pub(crate) fn render(&self, value: impl Fn(&F) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(&value(field)),
            }
        }
        out
    }
}

/// The error for a placeholder not among `known`.
pub(crate) fn unknown(name: &str, known: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let known: Vec<String> = known
        .into_iter()
        .map(|k| format!("{{{}}}", k.as_ref()))
        .collect();
    format!(
        "unknown placeholder `{{{name}}}` (known: {})",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(name: &str) -> Result<String, String> {
        if ["title", "url"].contains(&name) {
            Ok(name.to_owned())
        } else {
            Err(unknown(name, ["title", "url"]))
        }
    }

    #[test]
    fn placeholders_braces_and_errors() {
        let t = Template::parse("{title} {{x}} <{ url }>", names).unwrap();
        assert_eq!(t.render(|f| f.to_uppercase()), "TITLE {x} <URL>");
        assert_eq!(t.fields().collect::<Vec<_>>(), ["title", "url"]);
        assert_eq!(
            Template::parse("{titel}", names).unwrap_err(),
            "unknown placeholder `{titel}` (known: {title}, {url})"
        );
        assert!(
            Template::parse("{title", names)
                .unwrap_err()
                .contains("not closed")
        );
        assert!(
            Template::parse("a } b", names)
                .unwrap_err()
                .contains("lone")
        );
        assert_eq!(
            Template::parse("", names).unwrap().render(|_| "x".into()),
            ""
        );
    }
}
