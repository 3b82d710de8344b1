//! RFC 6749 §5.2 errors as values.
//!
//! One type travels the whole way: a component returns it, it crosses the plugin ABI as JSON,
//! and the host's HTTP layer renders it. Its serialized form *is* the RFC 6749 response body
//! (`{"error": …, "error_description": …}`), so no second mapping can drift from the first.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The `error` codes of RFC 6749 §5.2 (plus `server_error` and `temporarily_unavailable`,
/// which RFC 6749 §4.1.2.1 defines and token endpoints use for failures of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code as it appears in the `error` member.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status RFC 6749 §5.2 prescribes: 401 for a failed client authentication, 500 and
    /// 503 for the server's own failures, 400 for everything else.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth 2.0 error: a code and a human-readable description.
///
/// Descriptions are shown to clients: they name the rule that failed and never echo a secret,
/// an assertion or a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    #[serde(rename = "error")]
    pub code: ErrorCode,
    #[serde(rename = "error_description")]
    pub description: String,
}

macro_rules! constructors {
    ($($fn_name:ident => $code:ident),* $(,)?) => {
        $(
            #[doc = concat!("An `", stringify!($fn_name), "` error with this description.")]
            pub fn $fn_name(description: impl Into<String>) -> Self {
                Self::new(ErrorCode::$code, description)
            }
        )*
    };
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    constructors! {
        invalid_request => InvalidRequest,
        invalid_client => InvalidClient,
        invalid_grant => InvalidGrant,
        unauthorized_client => UnauthorizedClient,
        unsupported_grant_type => UnsupportedGrantType,
        invalid_scope => InvalidScope,
        server_error => ServerError,
        temporarily_unavailable => TemporarilyUnavailable,
    }

    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_rfc_6749_body() {
        let e = OAuthError::invalid_grant("assertion expired");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": "invalid_grant", "error_description": "assertion expired"})
        );
        assert_eq!(serde_json::from_value::<OAuthError>(json).unwrap(), e);
    }

    #[test]
    fn statuses_follow_rfc_6749() {
        assert_eq!(OAuthError::invalid_client("x").http_status(), 401);
        assert_eq!(OAuthError::invalid_request("x").http_status(), 400);
        assert_eq!(OAuthError::unsupported_grant_type("x").http_status(), 400);
        assert_eq!(OAuthError::server_error("x").http_status(), 500);
        assert_eq!(OAuthError::temporarily_unavailable("x").http_status(), 503);
    }
}
