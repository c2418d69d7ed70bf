//! Authentication to Travis CI's API v3: an API token (from `travis token`, or the account
//! settings page), sent as `Authorization: token <token>`, with `Travis-API-Version: 3` on
//! every request ([Authentication](https://developer.travis-ci.com/authentication)). Tokens
//! of travis-ci.com, travis-ci.org and each Enterprise installation are not interchangeable.
//!
//! This token is not the legacy webhook `Authorization` token of the endpoint options
//! ([`super::TravisOptions::legacy_token`]): that one only checks notifications.

use hookbridge_core::Secret;

use crate::api::{ApiError, Auth};

/// The service name used in errors.
pub(crate) const SERVICE: &str = "travis";

/// The API version header every request carries.
pub const API_VERSION_HEADER: &str = "travis-api-version";

/// Its value.
pub const API_VERSION: &str = "3";

/// `Authorization: token <token>`.
pub fn token_auth(token: &Secret) -> Result<Auth, ApiError> {
    if token.is_empty() {
        return Err(ApiError::Config {
            service: SERVICE,
            message: "the Travis CI API token is empty".into(),
        });
    }
    let mut value = b"token ".to_vec();
    value.extend_from_slice(token.expose());
    Ok(Auth::header("authorization", value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_required_and_never_printed() {
        assert!(token_auth(&Secret::new("")).is_err());
        let auth = token_auth(&Secret::new("xxxxxxxxxxxx-travis")).unwrap();
        assert!(!format!("{auth:?}").contains("xxxxxxxxxxxx-travis"));
    }
}
