//! The token request as components see it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A request to the token endpoint, after the host's HTTP layer has parsed and bounded it.
///
/// The host has already refused repeated parameters (RFC 6749 §3.2), so each name appears once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// The tenant the request was addressed to (`carbon.super` for the bare paths).
    pub tenant: String,
    /// The tenant's token endpoint URL, which is also its issuer (CONTRACT §5).
    pub endpoint_url: String,
    /// The form parameters.
    pub params: BTreeMap<String, String>,
    /// The request headers, names lower-cased (hop-by-hop headers and `Cookie` left out).
    pub headers: BTreeMap<String, String>,
}

impl TokenRequest {
    /// A form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A header, by case-insensitive name. A lower-case name (as the host's own lookups are)
    /// is looked up as it is: lower-casing it first allocated on every call, several per request.
    pub fn header(&self, name: &str) -> Option<&str> {
        let value = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.headers.get(&name.to_ascii_lowercase())
        } else {
            self.headers.get(name)
        };
        value.map(String::as_str)
    }

    /// The `grant_type` parameter.
    pub fn grant_type(&self) -> Option<&str> {
        self.param("grant_type")
    }

    /// The space-separated `scope` parameter, split (RFC 6749 §3.3).
    pub fn scopes(&self) -> Vec<&str> {
        self.param("scope")
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::TokenRequest;

    #[test]
    fn a_header_is_found_by_its_name_in_any_case() {
        let mut request = TokenRequest::default();
        request
            .headers
            .insert("content-type".into(), "application/json".into());
        for name in ["content-type", "Content-Type", "CONTENT-TYPE"] {
            assert_eq!(request.header(name), Some("application/json"), "{name}");
        }
        assert_eq!(request.header("content-length"), None);
        assert_eq!(request.header("Content-Length"), None);
    }
}
