//! Task name and notes templates: text with `{field}` placeholders (`{{` and `}}` for
//! literal braces), checked against the fields an integration offers when it is built, so a
//! typo is a configuration error and not a task named `{titel}`.

use std::fmt;

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

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
                                return Err(TemplateError(format!(
                                    "unclosed `{{{name}` (write `{{{{` for a literal brace)"
                                )));
                            }
                        }
                    }
                    let name = name.trim().to_owned();
                    if !fields.contains(&name.as_str()) {
                        return Err(TemplateError(format!(
                            "unknown placeholder `{{{name}}}`; known: {}",
                            fields
                                .iter()
                                .map(|f| format!("{{{f}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(name));
                }
                '}' => {
                    return Err(TemplateError(
                        "a lone `}` (write `}}` for a literal brace)".into(),
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// Whether the template uses `field`.
    pub(crate) fn uses(&self, field: &str) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Field(f) if f == field))
    }

    /// The text, with each placeholder replaced by `value(name)`.
    pub(crate) fn render(&self, value: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(name) => out.push_str(&value(name)),
            }
        }
        out
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
