//! Task name and notes templates: text with `{field}` placeholders (`{{` and `}}` for
//! literal braces), checked against the fields an integration offers when it is built, so a
//! typo is a configuration error and not a task named `{titel}`.

use std::fmt;

/// A parsed template whose placeholders are field names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template(super::super::template::Template<String>);

/// Why a template is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Template {
    /// Parses `text`, accepting only placeholders named in `fields`.
    pub(crate) fn parse(text: &str, fields: &[&str]) -> Result<Self, TemplateError> {
        super::super::template::Template::parse(text, |name| {
            if fields.contains(&name) {
                Ok(name.to_owned())
            } else {
                Err(super::super::template::unknown(name, fields))
            }
        })
        .map(Self)
        .map_err(TemplateError)
    }

    /// Whether the template uses `field`.
    pub(crate) fn uses(&self, field: &str) -> bool {
        self.0.fields().any(|f| f == field)
    }

    /// The text, with each placeholder replaced by `value(name)`.
    pub(crate) fn render(&self, value: impl Fn(&str) -> String) -> String {
        self.0.render(|name| value(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_literal_braces() {
        let t = Template::parse("{title} (#{number}) {{x}}", &["title", "number"]).unwrap();
        let out = t.render(|f| match f {
            "title" => "Bug".into(),
            "number" => "12".into(),
            _ => String::new(),
        });
        assert_eq!(out, "Bug (#12) {x}");
        assert!(t.uses("title"));
        assert!(!t.uses("url"));
    }

    #[test]
    fn rejects_unknown_and_unbalanced_placeholders() {
        let e = Template::parse("{titel}", &["title"]).unwrap_err();
        assert!(
            e.to_string().contains("unknown placeholder `{titel}`"),
            "{e}"
        );
        assert!(e.to_string().contains("{title}"), "{e}");
        assert!(Template::parse("{title", &["title"]).is_err());
        assert!(Template::parse("a } b", &["title"]).is_err());
        assert_eq!(
            Template::parse("", &[]).unwrap().render(|_| "x".into()),
            String::new()
        );
    }
}
