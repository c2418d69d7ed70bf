use std::sync::{Arc, OnceLock};

use hookbridge_core::{Provider, Secret};

/// A provider's configuration is wrong. The message names the problem and never contains a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum ProviderConfigError {
    /// No provider of that kind is compiled in.
    #[error("unknown provider kind {kind:?} (known: {})", kinds().join(", "))]
    UnknownKind {
        /// The kind asked for.
        kind: String,
    },
    /// The provider needs at least one secret and none was given.
    #[error("provider {kind} needs at least one secret (`secret` or `secrets`)")]
    MissingSecret {
        /// The provider kind.
        kind: &'static str,
    },
    /// A secret is empty (often an environment variable that is set but empty).
    #[error("secret #{index} for provider {kind} is empty")]
    EmptySecret {
        /// The provider kind.
        kind: &'static str,
        /// 1-based position of the empty secret.
        index: usize,
    },
    /// The provider-specific options do not fit.
    #[error("invalid options for provider {kind}: {message}")]
    Options {
        /// The provider kind.
        kind: &'static str,
        /// What is wrong, from the options parser.
        message: String,
    },
}

/// One table of every provider: feature, kind, module and type. Each row yields its arm in
/// [`kinds`], [`build`], [`parser`] and [`samples`], so adding a provider is one line here.
macro_rules! registry {
    ($($feature:literal => $module:ident :: $ty:ident),* $(,)?) => {
        /// The provider kinds compiled into this build, as written in configuration files.
        pub fn kinds() -> &'static [&'static str] {
            const KINDS: &[&str] = &[$(
                #[cfg(feature = $feature)]
                crate::$module::KIND.as_str(),
            )*];
            KINDS
        }

        /// Builds the provider named `kind` from its secrets and its provider-specific options
        /// (the rest of an endpoint's configuration table).
        ///
        /// ```
        /// use hookbridge_core::Secret;
        /// let github = hookbridge_providers::build("github", vec![Secret::new("s3cret")], toml::Table::new()).unwrap();
        /// assert_eq!(github.kind().as_str(), "github");
        /// assert!(hookbridge_providers::build("gopher", vec![], toml::Table::new()).is_err());
        /// ```
        pub fn build(
            kind: &str,
            secrets: Vec<Secret>,
            options: toml::Table,
        ) -> Result<Arc<dyn Provider>, ProviderConfigError> {
            $(
                #[cfg(feature = $feature)]
                if kind == crate::$module::KIND.as_str() {
                    let options = parse_options(crate::$module::KIND.as_str(), options)?;
                    return Ok(Arc::new(crate::$module::$ty::new(secrets, options)?));
                }
            )*
            let _ = (secrets, options);
            Err(ProviderConfigError::UnknownKind { kind: kind.to_owned() })
        }

        /// A provider of `kind` with no secret, for parsing and inspecting deliveries whose
        /// authenticity is not in question (captured files, stored deliveries). Its
        /// [`verify`](hookbridge_core::Provider::verify) always fails, so it cannot be mistaken
        /// for an endpoint's provider.
        ///
        /// Built once per kind and shared: the admin API and the dispatcher call this per
        /// delivery, and some providers are costly to build (Travis CI's holds an HTTP client,
        /// about 10 ms of TLS set-up).
        pub fn parser(kind: &str) -> Result<Arc<dyn Provider>, ProviderConfigError> {
            $(
                #[cfg(feature = $feature)]
                if kind == crate::$module::KIND.as_str() {
                    static PARSER: OnceLock<Arc<dyn Provider>> = OnceLock::new();
                    let parser = PARSER.get_or_init(|| Arc::new(crate::$module::$ty::unverified()));
                    return Ok(Arc::clone(parser));
                }
            )*
            Err(ProviderConfigError::UnknownKind { kind: kind.to_owned() })
        }

        /// The sample deliveries shipped for `kind` (empty for an unknown kind).
        pub fn samples(kind: &str) -> &'static [crate::Sample] {
            $(
                #[cfg(feature = $feature)]
                if kind == crate::$module::KIND.as_str() {
                    return crate::$module::SAMPLES;
                }
            )*
            let _ = kind;
            &[]
        }
    };
}

registry! {
    "asana" => asana::Asana,
    "github" => github::Github,
    "gitlab" => gitlab::Gitlab,
    "jira" => jira::Jira,
    "pagerduty" => pagerduty::Pagerduty,
    "slack" => slack::Slack,
    "standard-webhooks" => standard_webhooks::StandardWebhooks,
    "travis" => travis::Travis,
    "trello" => trello::Trello,
}

#[allow(dead_code)] // unused only when every provider feature is off
fn parse_options<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    options: toml::Table,
) -> Result<T, ProviderConfigError> {
    options
        .try_into()
        .map_err(|e: toml::de::Error| ProviderConfigError::Options {
            kind,
            message: e.message().to_owned(),
        })
}

/// Checks the secrets common rule: at least one, none empty.
#[allow(dead_code)] // unused only when every provider feature is off
pub(crate) fn require_secrets(
    kind: &'static str,
    secrets: &[Secret],
) -> Result<(), ProviderConfigError> {
    if secrets.is_empty() {
        return Err(ProviderConfigError::MissingSecret { kind });
    }
    if let Some(index) = secrets.iter().position(Secret::is_empty) {
        return Err(ProviderConfigError::EmptySecret {
            kind,
            index: index + 1,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::RawDelivery;

    #[test]
    fn parsers_are_built_once_per_kind_and_never_verify() {
        for kind in kinds() {
            let first = parser(kind).unwrap();
            let again = parser(kind).unwrap();
            assert!(Arc::ptr_eq(&first, &again), "{kind}: built again");
            assert_eq!(first.kind().as_str(), *kind);
            let delivery = RawDelivery::new(*kind, http::HeaderMap::new(), &b"{}"[..]);
            assert!(
                first.verify(&delivery).is_err(),
                "{kind}: a parser verified"
            );
        }
        assert!(matches!(
            parser("gopher"),
            Err(ProviderConfigError::UnknownKind { .. })
        ));
    }

    #[test]
    #[cfg(feature = "travis")]
    fn a_travis_parser_is_cheap_after_the_first() {
        let _ = parser("travis").unwrap();
        let started = std::time::Instant::now();
        for _ in 0..1000 {
            let _ = parser("travis").unwrap();
        }
        // Building one costs milliseconds (an HTTP client with TLS roots); 1,000 lookups of
        // the shared one take microseconds, even in a debug build on a busy machine.
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
}
