//! Texts with `{placeholder}`s, checked when the configuration is read so that a typo is a
//! configuration error rather than a literal `{titel}` in every Jira issue.

use std::fmt;

/// A value a template can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Var {
    Title,
    Body,
    Url,
    Number,
    Repo,
    Author,
    AuthorUrl,
    Kind,
    Key,
    JiraUrl,
}

impl Var {
    /// What is known before the Jira issue exists.
    pub(crate) const OBJECT: &'static [Var] = &[
        Var::Title,
        Var::Body,
        Var::Url,
        Var::Number,
        Var::Repo,
        Var::Author,
        Var::AuthorUrl,
        Var::Kind,
    ];
    /// Everything, the key and URL included.
    pub(crate) const ALL: &'static [Var] = &[
        Var::Title,
        Var::Body,
        Var::Url,
        Var::Number,
        Var::Repo,
        Var::Author,
        Var::AuthorUrl,
        Var::Kind,
        Var::Key,
        Var::JiraUrl,
    ];

    fn name(self) -> &'static str {
        match self {
            Var::Title => "title",
            Var::Body => "body",
            Var::Url => "url",
            Var::Number => "number",
            Var::Repo => "repo",
            Var::Author => "author",
            Var::AuthorUrl => "author_url",
            Var::Kind => "kind",
            Var::Key => "key",
            Var::JiraUrl => "jira_url",
        }
    }
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template(super::super::template::Template<Var>);

/// Why a template was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Template {
    /// Parses `text`, allowing the placeholders in `allowed`.
    pub(crate) fn parse(text: &str, allowed: &[Var]) -> Result<Self, TemplateError> {
        super::super::template::Template::parse(text, |name| {
            allowed
                .iter()
                .copied()
                .find(|v| v.name() == name)
                .ok_or_else(|| {
                    super::super::template::unknown(name, allowed.iter().map(|v| v.name()))
                })
        })
        .map(Self)
        .map_err(TemplateError)
    }

    /// The text, with each placeholder replaced by `value(var)`.
    pub(crate) fn render(&self, value: impl Fn(Var) -> String) -> String {
        self.0.render(|var| value(*var))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_renders_and_refuses() {
        let t = Template::parse("(From {url} by {author}) {{x}}", Var::OBJECT).unwrap();
        let text = t.render(|v| match v {
            Var::Url => "U".into(),
            Var::Author => "A".into(),
            _ => "?".into(),
        });
        assert_eq!(text, "(From U by A) {x}");
        assert!(
            Template::parse("{key}", Var::OBJECT)
                .unwrap_err()
                .0
                .contains("unknown placeholder `{key}`")
        );
        assert!(Template::parse("{key}", Var::ALL).is_ok());
        assert!(Template::parse("{title", Var::ALL).is_err());
        assert!(Template::parse("a } b", Var::ALL).is_err());
    }
}
