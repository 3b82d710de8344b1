//! The three kinds of component, and how one is described and built.
//!
//! Each trait is two questions, as in Ory fosite: a cheap, synchronous *can you take this?* and
//! an async *do it*. The host composes components of a kind in a list ordered by identity.xml's
//! `orderId`; RFC errors are values ([`OAuthError`]), never panics.

use crate::{
    AuthenticatedClient, Grant, HostServices, JwtError, OAuthError, Properties, TokenRequest,
    TrustSource, VerifiedJwt,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Decides a grant (`grant_type`) of the token endpoint. Which `grant_type` value reaches which
/// handler is identity.xml's `SupportedGrantType` mapping, not the handler's business.
#[async_trait]
pub trait GrantHandler: Send + Sync {
    /// Checks the request's own parameters (e.g. `assertion` present) before the client is
    /// authenticated, so that a malformed request is `invalid_request` whoever sends it.
    fn validate_request(&self, _request: &TokenRequest) -> Result<(), OAuthError> {
        Ok(())
    }

    /// Decides the grant for an authenticated client.
    async fn handle(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
    ) -> Result<Grant, OAuthError>;
}

/// Authenticates the client of a token, introspection or revocation request.
#[async_trait]
pub trait ClientAuthenticator: Send + Sync {
    /// Whether the request presents this authenticator's kind of credential (a Basic header, a
    /// `client_assertion`, …). The first active authenticator, by `orderId`, that can
    /// authenticate a request does.
    fn can_authenticate(&self, request: &TokenRequest) -> bool;

    /// Authenticates, or fails with `invalid_client` (or `invalid_request`).
    async fn authenticate(&self, request: &TokenRequest)
        -> Result<AuthenticatedClient, OAuthError>;
}

/// Verifies a JWT's signature with the keys of a trust source.
#[async_trait]
pub trait JwtValidator: Send + Sync {
    /// Whether this validator can speak for `source`. The first active validator, by `orderId`,
    /// that can, decides.
    fn can_validate(&self, _source: &TrustSource) -> bool {
        true
    }

    async fn validate(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError>;

    /// Not part of the API: [`Self::validate`]'s answer in its wire form, which a loaded
    /// validator gives as it came (`crate::abi`). Do not implement it.
    #[doc(hidden)]
    async fn validate_encoded(&self, jwt: &str, source: &TrustSource) -> crate::abi::Encoded {
        crate::abi::Encoded::of(self.validate(jwt, source).await)
    }
}

/// The three kinds of component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    GrantHandler,
    ClientAuthenticator,
    JwtValidator,
}

impl ComponentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::GrantHandler => "grant-handler",
            ComponentKind::ClientAuthenticator => "client-authenticator",
            ComponentKind::JwtValidator => "jwt-validator",
        }
    }
}

impl std::fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A property a component understands. identity.xml naming any other is a start-up error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertySpec {
    pub name: String,
    /// The default, as text, when the property is absent (`None`: no default).
    pub default: Option<String>,
    pub description: String,
}

/// How a component is known: its kind, name, aliases (e.g. the WSO2 class name it replaces),
/// the properties it accepts, and what it provides (the grant types a grant handler serves by
/// default, or the `token_endpoint_auth_method` an authenticator implements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    pub kind: ComponentKind,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub properties: Vec<PropertySpec>,
    #[serde(default)]
    pub provides: Vec<String>,
    #[serde(default)]
    pub description: String,
}

impl ComponentInfo {
    pub fn new(kind: ComponentKind, name: impl Into<String>) -> Self {
        ComponentInfo {
            kind,
            name: name.into(),
            aliases: Vec::new(),
            properties: Vec::new(),
            provides: Vec::new(),
            description: String::new(),
        }
    }

    pub fn grant_handler(name: impl Into<String>) -> Self {
        Self::new(ComponentKind::GrantHandler, name)
    }

    pub fn client_authenticator(name: impl Into<String>) -> Self {
        Self::new(ComponentKind::ClientAuthenticator, name)
    }

    pub fn jwt_validator(name: impl Into<String>) -> Self {
        Self::new(ComponentKind::JwtValidator, name)
    }

    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.aliases.push(alias.into());
        self
    }

    /// A property the component accepts, with its default (as text) if any.
    pub fn property(
        mut self,
        name: impl Into<String>,
        default: Option<&str>,
        description: impl Into<String>,
    ) -> Self {
        self.properties.push(PropertySpec {
            name: name.into(),
            default: default.map(str::to_string),
            description: description.into(),
        });
        self
    }

    /// A grant type this handler serves, or the auth method this authenticator implements.
    pub fn provides(mut self, what: impl Into<String>) -> Self {
        self.provides.push(what.into());
        self
    }

    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Whether `name` is this component's name or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.iter().any(|a| a == name)
    }

    /// The declared property matching `name` case-insensitively.
    pub fn property_spec(&self, name: &str) -> Option<&PropertySpec> {
        self.properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// A `Cache` element of identity.xml, for the component whose cache has that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSettings {
    pub enable: bool,
    pub timeout_secs: u64,
    pub capacity: u64,
}

/// Server settings every component may need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSettings {
    /// `[oauth] timestamp_skew_secs`: clock skew allowed on `exp` / `nbf` / `iat`.
    pub timestamp_skew_secs: u64,
    /// `[oauth] max_assertion_lifetime_secs`.
    pub max_assertion_lifetime_secs: u64,
    /// identity.xml `CacheManager/Cache` entries by cache name.
    pub caches: BTreeMap<String, CacheSettings>,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            timestamp_skew_secs: 60,
            max_assertion_lifetime_secs: 86400,
            caches: BTreeMap::new(),
        }
    }
}

/// What a component's constructor receives.
#[derive(Clone)]
pub struct ComponentContext {
    /// The listener's `Property` values (declared ones only; defaults are the component's).
    pub properties: Properties,
    pub settings: HostSettings,
    pub host: Arc<dyn HostServices>,
}

/// A constructed component of any kind.
#[derive(Clone)]
pub enum Component {
    GrantHandler(Arc<dyn GrantHandler>),
    ClientAuthenticator(Arc<dyn ClientAuthenticator>),
    JwtValidator(Arc<dyn JwtValidator>),
}

impl Component {
    pub fn kind(&self) -> ComponentKind {
        match self {
            Component::GrantHandler(_) => ComponentKind::GrantHandler,
            Component::ClientAuthenticator(_) => ComponentKind::ClientAuthenticator,
            Component::JwtValidator(_) => ComponentKind::JwtValidator,
        }
    }
}
