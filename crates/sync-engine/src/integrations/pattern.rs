//! fnmatch-style patterns for repository names (`octo-org/*`, `octo-org/api-?`,
//! `octo-org/[a-m]*`), matched case-insensitively because GitHub names are: the repository
//! mappings of github-jira and github-asana.

/// Whether `text` matches `pattern`: `*` is any run of characters (`/` included, as in
/// Python's `fnmatch`), `?` one character, `[abc]`, `[a-z]` and `[!abc]` a character class.
/// ASCII letters compare without case.
pub(crate) fn fnmatch(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let text: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    matches_at(&pattern, &text)
}

/// Whether `pattern` has a well-formed shape (every `[` closed).
pub(crate) fn check(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '[' {
            match class_end(&chars, i) {
                Some(end) => i = end,
                None => return Err(format!("`{pattern}`: a `[` is not closed")),
            }
        }
        i += 1;
    }
    if pattern.is_empty() {
        return Err("an empty pattern".into());
    }
    Ok(())
}

/// The index of the `]` closing the class that opens at `open`.
fn class_end(p: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if p.get(i) == Some(&'!') {
        i += 1;
    }
    // A `]` right after the opening (or after `!`) is a member, as in fnmatch.
    if p.get(i) == Some(&']') {
        i += 1;
    }
    while i < p.len() {
        if p[i] == ']' {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, members) = match class.first() {
        Some('!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut found = false;
    let mut i = 0;
    while i < members.len() {
        if i + 2 < members.len() && members[i + 1] == '-' {
            if members[i] <= c && c <= members[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if members[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    found != negated
}

fn matches_at(p: &[char], t: &[char]) -> bool {
    // Iterative matching with one backtrack point for the last `*` (linear in practice).
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match class_end(p, pi) {
                Some(end) if class_matches(&p[pi + 1..end], t[ti]) => Some(end + 1),
                Some(_) => None,
                // An unclosed `[` is a literal.
                None => (t[ti] == '[').then_some(pi + 1),
            },
            Some(c) => (*c == t[ti]).then_some(pi + 1),
            None => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_fnmatch() {
        assert!(fnmatch("octo-org/*", "octo-org/octo-repo"));
        assert!(fnmatch("Octo-Org/Octo-Repo", "octo-org/octo-repo"));
        assert!(!fnmatch("octo-org/*", "other/octo-repo"));
        assert!(fnmatch("*/docs", "octo-org/docs"));
        assert!(fnmatch("*", "a/b"));
        assert!(fnmatch("octo-org/api-?", "octo-org/api-2"));
        assert!(!fnmatch("octo-org/api-?", "octo-org/api-22"));
        assert!(fnmatch("octo-org/[a-m]*", "octo-org/hookbridge"));
        assert!(!fnmatch("octo-org/[a-m]*", "octo-org/zeta"));
        assert!(fnmatch("octo-org/[!a-m]*", "octo-org/zeta"));
        assert!(fnmatch("a*b*c", "axxbyyc"));
        assert!(!fnmatch("a*b*c", "axxbyy"));
        assert!(fnmatch("a[]]b", "a]b"));
        assert!(fnmatch("a[b", "a[b"));
        assert!(!fnmatch("", "x"));
        assert!(fnmatch("", ""));
    }

    #[test]
    fn checks_shapes() {
        assert!(check("octo-org/*").is_ok());
        assert!(check("octo-org/[a-").is_err());
        assert!(check("").is_err());
    }

    #[test]
    fn fnmatch_like_python() {
        assert!(fnmatch("octo-org/*", "octo-org/octo-repo"));
        assert!(fnmatch("octo-org/*", "Octo-Org/Repo"));
        assert!(!fnmatch("octo-org/*", "other/octo-repo"));
        assert!(fnmatch("*", "a/b"));
        assert!(fnmatch("*/web-*", "org/web-app"));
        assert!(!fnmatch("*/web-*", "org/api"));
        assert!(fnmatch("org/repo?", "org/repo1"));
        assert!(!fnmatch("org/repo?", "org/repo"));
        assert!(fnmatch("org/[ab]*", "org/beta"));
        assert!(!fnmatch("org/[!ab]*", "org/beta"));
        assert!(fnmatch("org/[a-c]x", "org/bx"));
        assert!(
            fnmatch("org/[x", "org/[x"),
            "an unterminated class is literal"
        );
        assert!(fnmatch("org/exact", "org/exact"));
        assert!(!fnmatch("org/exact", "org/exactly"));
        assert!(fnmatch("a*b*c", "aXXbYYbc"));
    }
}
