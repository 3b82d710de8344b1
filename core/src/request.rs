//! The token request as components see it.
//!
//! It is shared, not copied: the host builds it once per request, and every component that looks
//! at it — built in or loaded from a plugin — reads the same memory. Its fields are
//! `abi_stable` types behind a reference count ([`RArc`]), which is what lets it cross the plugin
//! ABI as a pointer: passing it to a plugin costs an atomic increment, where encoding it as
//! JSON and decoding it on the other side cost ~30 heap allocations per call, three calls per
//! grant.

use abi_stable::std_types::{RArc, RString, RVec, Tuple2};
use abi_stable::StableAbi;
use std::fmt;

/// A request to the token endpoint, after the host's HTTP layer has parsed and bounded it.
///
/// The host has already refused repeated parameters (RFC 6749 §3.2), so each name appears once.
/// Cloning it is cheap (a reference count).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenRequest(RArc<Fields>);

/// What a [`TokenRequest`] holds, in the layout the plugin ABI checks.
#[doc(hidden)]
#[repr(C)]
#[derive(Clone, Default, PartialEq, Eq, StableAbi)]
pub struct Fields {
    tenant: RString,
    endpoint_url: RString,
    params: RVec<Tuple2<RString, RString>>,
    headers: RVec<Tuple2<RString, RString>>,
}

impl TokenRequest {
    /// An empty request to `tenant`'s token endpoint at `endpoint_url`; parameters and headers
    /// are added with [`Self::with_params`] and [`Self::with_headers`].
    pub fn new(tenant: impl Into<String>, endpoint_url: impl Into<String>) -> Self {
        TokenRequest(RArc::new(Fields {
            tenant: tenant.into().into(),
            endpoint_url: endpoint_url.into().into(),
            params: RVec::new(),
            headers: RVec::new(),
        }))
    }

    /// With these form parameters added (a name given twice keeps the last value).
    pub fn with_params<N: Into<String>, V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        for (name, value) in params {
            self.set_param(name, value);
        }
        self
    }

    /// With these request headers added (names lower-cased; a name given twice keeps the last
    /// value).
    pub fn with_headers<N: Into<String>, V: Into<String>>(
        mut self,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        for (name, value) in headers {
            self.set_header(name, value);
        }
        self
    }

    /// The tenant the request was addressed to (`carbon.super` for the bare paths).
    pub fn tenant(&self) -> &str {
        &self.0.tenant
    }

    /// The tenant's token endpoint URL, which is also its issuer (CONTRACT §5).
    pub fn endpoint_url(&self) -> &str {
        &self.0.endpoint_url
    }

    /// A form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        find(&self.0.params, name)
    }

    /// The form parameters, in the order they were given.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        pairs(&self.0.params)
    }

    /// A header, by case-insensitive name. Hop-by-hop headers and `Cookie` are not here.
    pub fn header(&self, name: &str) -> Option<&str> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            find(&self.0.headers, &name.to_ascii_lowercase())
        } else {
            find(&self.0.headers, name)
        }
    }

    /// The request headers, names lower-cased.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        pairs(&self.0.headers)
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

    /// Sets a form parameter, replacing one of that name (for tests and for components that
    /// derive a request from another; the copy is made only if the request is shared).
    pub fn set_param(&mut self, name: impl Into<String>, value: impl Into<String>) {
        set(
            &mut RArc::make_mut(&mut self.0).params,
            name.into(),
            value.into(),
        );
    }

    /// Removes a form parameter.
    pub fn remove_param(&mut self, name: &str) {
        RArc::make_mut(&mut self.0)
            .params
            .retain(|p| p.0.as_str() != name);
    }

    /// Sets a header (its name lower-cased), replacing one of that name.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        set(
            &mut RArc::make_mut(&mut self.0).headers,
            lower(name.into()),
            value.into(),
        );
    }

    /// The shared fields, for the plugin ABI.
    pub(crate) fn shared(&self) -> RArc<Fields> {
        self.0.clone()
    }

    /// A request around fields shared by the plugin ABI.
    pub(crate) fn from_shared(fields: RArc<Fields>) -> Self {
        TokenRequest(fields)
    }
}

/// Names and header names only: parameter and header values hold secrets and assertions.
impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("tenant", &self.tenant())
            .field("endpoint_url", &self.endpoint_url())
            .field("params", &self.params().map(|(n, _)| n).collect::<Vec<_>>())
            .field(
                "headers",
                &self.headers().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn lower(mut name: String) -> String {
    name.make_ascii_lowercase();
    name
}

fn find<'a>(pairs: &'a RVec<Tuple2<RString, RString>>, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|p| p.0.as_str() == name)
        .map(|p| p.1.as_str())
}

fn pairs(pairs: &RVec<Tuple2<RString, RString>>) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|p| (p.0.as_str(), p.1.as_str()))
}

fn set(pairs: &mut RVec<Tuple2<RString, RString>>, name: String, value: String) {
    match pairs.iter_mut().find(|p| p.0.as_str() == name) {
        Some(pair) => pair.1 = value.into(),
        None => pairs.push(Tuple2(name.into(), value.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::TokenRequest;

    fn request() -> TokenRequest {
        TokenRequest::new("carbon.super", "https://localhost/oauth2/token")
            .with_params([("grant_type", "client_credentials"), ("scope", " a  b ")])
            .with_headers([("Content-Type", "application/json")])
    }

    #[test]
    fn a_header_is_found_by_its_name_in_any_case() {
        let request = request();
        for name in ["content-type", "Content-Type", "CONTENT-TYPE"] {
            assert_eq!(request.header(name), Some("application/json"), "{name}");
        }
        assert_eq!(request.header("content-length"), None);
        assert_eq!(request.header("Content-Length"), None);
    }

    #[test]
    fn parameters_are_read_set_and_removed() {
        let mut request = request();
        assert_eq!(request.grant_type(), Some("client_credentials"));
        assert_eq!(request.scopes(), ["a", "b"]);
        request.set_param("scope", "c");
        request.set_param("assertion", "x");
        assert_eq!(request.scopes(), ["c"]);
        assert_eq!(request.params().count(), 3);
        request.remove_param("assertion");
        assert_eq!(request.param("assertion"), None);
        assert_eq!(request.tenant(), "carbon.super");
        assert_eq!(request.endpoint_url(), "https://localhost/oauth2/token");
    }

    #[test]
    fn changing_a_shared_request_leaves_the_other_handle_alone() {
        let original = request();
        let mut copy = original.clone();
        copy.set_header("X-Api-Key", "k");
        assert_eq!(copy.header("x-api-key"), Some("k"));
        assert_eq!(original.header("x-api-key"), None);
    }

    #[test]
    fn debug_shows_names_never_values() {
        let mut request = request();
        request.set_param("client_secret", "s3cr3t");
        request.set_header("authorization", "Basic c2VjcmV0");
        let shown = format!("{request:?}");
        assert!(shown.contains("client_secret") && shown.contains("authorization"));
        assert!(!shown.contains("s3cr3t") && !shown.contains("c2VjcmV0"));
    }
}
