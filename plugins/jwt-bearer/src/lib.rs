//! # tollgate-jwt-bearer
//!
//! The JWT bearer grant of RFC 7523 §2.1 (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`),
//! registered as `jwt-bearer` and under WSO2's
//! `org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler`.
//!
//! A client trades an identity provider's signed JWT (`assertion`) for Tollgate's tokens. The
//! rules (CONTRACT §6), in the order they are checked:
//! 1. `assertion` present (else `invalid_request`, before the client is authenticated);
//! 2. `iss` names an enabled identity provider of the tenant, and the signature verifies with its
//!    JWKS or certificate — both decided by the host (`validate_jwt`), which never uses a key
//!    the token names itself;
//! 3. `sub` present; `aud` (a string or an array) contains the IdP's alias;
//! 4. `exp` present and not past; not further ahead than `max_assertion_lifetime_secs`;
//!    `nbf` and `iat` not in the future; `iat`, when present, not older than
//!    `IATValidityPeriodInMinutes`. Every time check allows `timestamp_skew_secs`, and the skew
//!    only ever *widens* what is accepted;
//! 5. with `PreventTokenReuse` (default true), a `jti` already used and unexpired is refused.
//!    The jti is kept per tenant **and issuer**, so two IdPs cannot block each other's tokens,
//!    in the host's jti store — shared by every host on the database — until the assertion's
//!    `exp` plus the skew, and cleaned after. The handler hands the jti to the host with the
//!    grant ([`Grant::jti`]), which records it in the transaction that stores the tokens: one
//!    commit per grant, not two.
//!
//! Every failure is `invalid_grant` with a description naming the rule; the assertion itself is
//! never echoed. The grant's subject is `sub`; the scopes are those requested (the host
//! refuses any the client may not have); an access and a refresh token are issued.

use std::sync::Arc;
use tollgate_core::{
    async_trait, audience_contains, export_plugin, peek_issuer, sdk::BoxError, sdk::Plugin,
    AuthenticatedClient, ComponentContext, ComponentInfo, Grant, GrantHandler, HostServices,
    OAuthError, SingleUse, TimeRules, TokenRequest, TrustSource, TrustedParty,
};

/// The grant type this handler serves.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The handler, with its properties and the host's time settings.
pub struct JwtBearer {
    host: Arc<dyn HostServices>,
    prevent_reuse: bool,
    time: TimeRules,
}

impl JwtBearer {
    pub fn new(ctx: &ComponentContext) -> Result<Self, BoxError> {
        let minutes: i64 = ctx.properties.parse_or("IATValidityPeriodInMinutes", 30)?;
        if minutes <= 0 {
            return Err("IATValidityPeriodInMinutes must be greater than 0".into());
        }
        Ok(JwtBearer {
            host: ctx.host.clone(),
            prevent_reuse: ctx.properties.bool_or("PreventTokenReuse", true)?,
            time: TimeRules::new(&ctx.settings, minutes, "IATValidityPeriodInMinutes"),
        })
    }
}

fn invalid(reason: impl Into<String>) -> OAuthError {
    OAuthError::invalid_grant(reason)
}

#[async_trait]
impl GrantHandler for JwtBearer {
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
        let unverified = peek_issuer(assertion)
            .ok_or_else(|| invalid("the assertion is not a signed JWT of at most 16 KiB"))?;
        let Some(issuer) = unverified.iss().map(str::to_owned) else {
            return Err(invalid("the assertion has no iss"));
        };
        let source = TrustSource::IdentityProvider {
            tenant: request.tenant().to_string(),
            name: issuer.clone(),
        };
        let verified = self
            .host
            .validate_jwt(assertion, &source)
            .await
            .map_err(|e| e.into_oauth(self.host.as_ref(), invalid))?;
        let TrustedParty::IdentityProvider { alias, .. } = &verified.party else {
            return Err(invalid(
                "the assertion's issuer is not an identity provider",
            ));
        };
        let claims = &verified.claims;

        let subject = match claims.get("sub") {
            Some(serde_json::Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(invalid("the assertion has no sub")),
        };
        if !audience_contains(claims, alias).map_err(invalid)? {
            return Err(invalid(format!(
                "aud does not contain the identity provider's alias {alias}"
            )));
        }
        let exp = self.time.check(claims, self.host.now()).map_err(invalid)?;
        let jti = match claims.get("jti") {
            _ if !self.prevent_reuse => None,
            None => None,
            Some(serde_json::Value::String(jti)) if !jti.is_empty() => Some(SingleUse {
                scope: format!("jwt-bearer\n{}\n{issuer}", request.tenant()),
                jti: jti.clone(),
                expires_at: exp.saturating_add(self.time.skew),
            }),
            Some(_) => return Err(invalid("jti must be a non-empty string")),
        };

        let mut grant = Grant {
            subject,
            scopes: request.scopes().into_iter().map(str::to_owned).collect(),
            refresh_token: true,
            jti,
            ..Grant::default()
        };
        grant.claims.insert("idp".into(), issuer.into());
        Ok(grant)
    }
}

/// The plugin's one component.
pub fn plugin() -> Plugin {
    Plugin::new().grant_handler(
        ComponentInfo::grant_handler("jwt-bearer")
            .alias("org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler")
            .provides(GRANT_TYPE)
            .property(
                "PreventTokenReuse",
                Some("true"),
                "refuse an assertion whose jti was already used and is unexpired",
            )
            .property(
                "IATValidityPeriodInMinutes",
                Some("30"),
                "refuse an assertion whose iat is older than this",
            )
            .description("RFC 7523 JWT bearer grant: an identity provider's signed JWT for tokens"),
        |ctx| JwtBearer::new(&ctx),
    )
}

export_plugin!(plugin());

#[cfg(test)]
mod tests;
