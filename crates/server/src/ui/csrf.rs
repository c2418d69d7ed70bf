//! Form bodies and their CSRF token: every `POST` of the dashboard carries the session's
//! token in the `csrf` field, compared in constant time.

use hookbridge_core::Secret;

/// The form field holding the token.
pub(super) const FIELD: &str = "csrf";

/// A parsed `application/x-www-form-urlencoded` body; a name may repeat (checkboxes).
#[derive(Clone, Debug, Default)]
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub(super) fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether the form carries exactly `expected` as its token (one token, compared in constant
/// time; an empty token never matches).
pub(super) fn matches(form: &Form, expected: &Secret) -> bool {
    let mut tokens = form.all(FIELD);
    match (tokens.next(), tokens.next()) {
        (Some(token), None) if !token.is_empty() && !expected.is_empty() => {
            Secret::new(token) == *expected
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_must_be_there_once_and_equal() {
        let expected = Secret::new("tok-123");
        assert!(matches(&Form::parse(b"a=1&csrf=tok-123"), &expected));
        assert!(!matches(&Form::parse(b"a=1"), &expected));
        assert!(!matches(&Form::parse(b"csrf="), &expected));
        assert!(!matches(&Form::parse(b"csrf=tok-124"), &expected));
        assert!(!matches(&Form::parse(b"csrf=tok-123&csrf=x"), &expected));
        assert!(!matches(&Form::parse(b"csrf="), &Secret::new("")));
        let form = Form::parse(b"job=1&job=2&x=%2Fui%2F");
        assert_eq!(form.all("job").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(form.get("x"), Some("/ui/"));
    }
}
