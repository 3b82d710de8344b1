//! # github-actions-grant
//!
//! A grant handler, built out of tree: a GitHub Actions job trades the OIDC token GitHub gives it
//! for a Tollgate access token that speaks for the job's repository and branch — workload
//! identity federation, so that no per-repository secret lives in GitHub.
//!
//! ```text
//! POST /oauth2/token
//! grant_type=urn:example:params:oauth:grant-type:github-actions
//! assertion=<the job's OIDC token>&scope=deploy
//! ```
//!
//! The operator registers GitHub as an identity provider (`name`
//! `https://token.actions.githubusercontent.com`, `jwksUri`
//! `https://token.actions.githubusercontent.com/.well-known/jwks`, `alias` the audience the
//! workflow asks GitHub for), enables this handler, and says which repositories may come in:
//!
//! ```xml
//! <EventListener name="github-actions" orderId="60" enable="true">
//!   <Property name="AllowedRepositories">acme/app, acme/infra-*</Property>
//!   <Property name="AllowedRefs">refs/heads/main</Property>
//! </EventListener>
//! ```
//!
//! The rules, in the order they are checked (every failure is `invalid_grant` naming the rule;
//! the token itself is never echoed or logged):
//! 1. `assertion` present — `invalid_request`, before the client is authenticated;
//! 2. the signature verifies against the identity provider named by `Issuer` — the host decides
//!    that, with the IdP's registered keys; the token's own `iss` chooses nothing;
//! 3. `aud` contains the IdP's alias; `exp`, `nbf`, `iat` within the host's time rules, `iat` not
//!    older than `MaxAgeInMinutes`;
//! 4. the `repository` claim matches `AllowedRepositories`, and the `ref` claim matches
//!    `AllowedRefs` when that is set;
//! 5. the `jti` was not used before (GitHub puts one in every token), in the host's jti store,
//!    which every host sharing the database sees.
//!
//! The grant's subject is the token's `sub` (`repo:acme/app:ref:refs/heads/main`), its scopes
//! those requested (the host refuses any the client may not have); a job is short-lived, so no
//! refresh token. A JWT access token carries `repository` and `ref` as claims.

use std::sync::Arc;
use tollgate_core::serde_json::Value;
use tollgate_core::{
    async_trait, audience_contains, export_plugin, sdk::BoxError, sdk::Plugin, AuthenticatedClient,
    ComponentContext, ComponentInfo, Grant, GrantHandler, HostServices, LogLevel, OAuthError,
    TimeRules, TokenRequest, TrustSource, TrustedParty,
};

/// The grant type this handler serves unless identity.xml maps it otherwise.
pub const GRANT_TYPE: &str = "urn:example:params:oauth:grant-type:github-actions";
/// GitHub's OIDC issuer: the default `Issuer`.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The handler, with its policy and the host it asks.
pub struct GithubActionsGrant {
    host: Arc<dyn HostServices>,
    issuer: String,
    repositories: Vec<Pattern>,
    refs: Vec<Pattern>,
    time: TimeRules,
}

/// `owner/repo` exactly, or a prefix followed by `*` (`acme/*`, `acme/infra-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    /// Comma-separated patterns; empty entries are skipped.
    fn list(text: &str) -> Vec<Pattern> {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.strip_suffix('*') {
                Some(prefix) => Pattern::Prefix(prefix.to_owned()),
                None => Pattern::Exact(p.to_owned()),
            })
            .collect()
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(p) => value == p,
            Pattern::Prefix(p) => value.starts_with(p.as_str()),
        }
    }

    /// Whether the pattern pins at least an owner (`acme/…`), so `*` alone is refused.
    fn names_owner(&self) -> bool {
        match self {
            Pattern::Exact(p) => p.contains('/'),
            Pattern::Prefix(p) => p
                .split_once('/')
                .is_some_and(|(owner, _)| !owner.is_empty()),
        }
    }
}

impl GithubActionsGrant {
    /// Reads the properties; a missing `AllowedRepositories` or a bare `*` stops start-up —
    /// a handler that lets every repository on GitHub in is a misconfiguration, not a default.
    pub fn new(ctx: &ComponentContext) -> Result<Self, BoxError> {
        let p = &ctx.properties;
        let repositories = Pattern::list(p.get("AllowedRepositories").unwrap_or_default());
        if repositories.is_empty() {
            return Err("property AllowedRepositories is required (owner/repo or owner/*)".into());
        }
        if repositories.iter().any(|r| !r.names_owner()) {
            return Err(
                "AllowedRepositories: a pattern must name its owner (owner/ or owner/*)".into(),
            );
        }
        let minutes: i64 = p.parse_or("MaxAgeInMinutes", 10)?;
        if minutes <= 0 {
            return Err("MaxAgeInMinutes must be greater than 0".into());
        }
        Ok(GithubActionsGrant {
            host: ctx.host.clone(),
            issuer: p.get("Issuer").unwrap_or(GITHUB_ISSUER).trim().to_owned(),
            repositories,
            refs: Pattern::list(p.get("AllowedRefs").unwrap_or_default()),
            time: TimeRules::new(&ctx.settings, minutes, "MaxAgeInMinutes"),
        })
    }
}

fn invalid(reason: impl Into<String>) -> OAuthError {
    OAuthError::invalid_grant(reason)
}

/// A non-empty string claim, or `invalid_grant` naming it.
fn string_claim<'a>(
    claims: &'a tollgate_core::serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a str, OAuthError> {
    match claims.get(name) {
        Some(Value::String(v)) if !v.is_empty() => Ok(v),
        _ => Err(invalid(format!("the token has no {name}"))),
    }
}

#[async_trait]
impl GrantHandler for GithubActionsGrant {
    fn validate_request(&self, request: &TokenRequest) -> Result<(), OAuthError> {
        match request.param("assertion") {
            Some(a) if !a.is_empty() => Ok(()),
            _ => Err(OAuthError::invalid_request(
                "the assertion parameter is required",
            )),
        }
    }

    async fn handle(
        &self,
        request: &TokenRequest,
        _client: &AuthenticatedClient,
    ) -> Result<Grant, OAuthError> {
        let assertion = request.param("assertion").unwrap_or_default();
        let source = TrustSource::IdentityProvider {
            tenant: request.tenant().to_string(),
            name: self.issuer.clone(),
        };
        let verified = self
            .host
            .validate_jwt(assertion, &source)
            .await
            .map_err(|e| e.into_oauth(self.host.as_ref(), invalid))?;
        let TrustedParty::IdentityProvider { alias, .. } = &verified.party else {
            return Err(invalid("the issuer is not an identity provider"));
        };
        let claims = &verified.claims;
        if string_claim(claims, "iss")? != self.issuer {
            return Err(invalid(format!("iss is not {}", self.issuer)));
        }
        if !audience_contains(claims, alias).map_err(invalid)? {
            return Err(invalid(format!(
                "aud does not contain the identity provider's alias {alias}"
            )));
        }
        let exp = self.time.check(claims, self.host.now()).map_err(invalid)?;
        let repository = string_claim(claims, "repository")?;
        if !self.repositories.iter().any(|p| p.matches(repository)) {
            return Err(invalid(format!(
                "repository {repository} is not in AllowedRepositories"
            )));
        }
        let git_ref = string_claim(claims, "ref")?;
        if !self.refs.is_empty() && !self.refs.iter().any(|p| p.matches(git_ref)) {
            return Err(invalid(format!("ref {git_ref} is not in AllowedRefs")));
        }
        let jti = string_claim(claims, "jti")?;
        let scope = format!("github-actions\n{}\n{}", request.tenant(), self.issuer);
        let first_use = self
            .host
            .check_and_store_jti(&scope, jti, exp.saturating_add(self.time.skew))
            .await
            .map_err(|e| {
                self.host.log(LogLevel::Error, &format!("jti store: {e}"));
                OAuthError::server_error("the token could not be checked now")
            })?;
        if !first_use {
            return Err(invalid("the token was already used (jti)"));
        }

        let mut grant = Grant {
            subject: string_claim(claims, "sub")?.to_owned(),
            scopes: request.scopes().into_iter().map(str::to_owned).collect(),
            refresh_token: false,
            ..Grant::default()
        };
        grant.claims.insert("repository".into(), repository.into());
        grant.claims.insert("ref".into(), git_ref.into());
        Ok(grant)
    }
}

/// The plugin's one component: what `export_plugin!` exports, and what tests construct.
pub fn plugin() -> Plugin {
    Plugin::new().grant_handler(
        ComponentInfo::grant_handler("github-actions")
            .alias("com.example.tollgate.GithubActionsGrantHandler")
            .provides(GRANT_TYPE)
            .property(
                "AllowedRepositories",
                None,
                "owner/repo or owner/prefix* patterns, comma-separated (required)",
            )
            .property(
                "AllowedRefs",
                None,
                "ref patterns, comma-separated (e.g. refs/heads/main); any ref when absent",
            )
            .property(
                "Issuer",
                Some(GITHUB_ISSUER),
                "the registered identity provider whose tokens are accepted",
            )
            .property(
                "MaxAgeInMinutes",
                Some("10"),
                "refuse a token whose iat is older than this",
            )
            .description("A GitHub Actions OIDC token for an access token of its repository"),
        |ctx| GithubActionsGrant::new(&ctx),
    )
}

export_plugin!(plugin());

#[cfg(test)]
mod tests;
