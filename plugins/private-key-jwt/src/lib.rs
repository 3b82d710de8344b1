//! # tollgate-private-key-jwt
//!
//! Client authentication with a JWT signed by the client's own private key (RFC 7523 §2.2,
//! OIDC `private_key_jwt`), registered as `private-key-jwt` and under WSO2's
//! `org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator`.
//!
//! It takes requests with `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//! and `client_assertion`. The rules (CONTRACT §6), each failure `invalid_client` naming it:
//! 1. `iss` = `sub` = a client of the tenant registered with `private_key_jwt`; a `client_id`
//!    in the form, if sent, is the same;
//! 2. the signature verifies with the client's `jwks_uri` or inline `jwks` — decided by the host
//!    (`validate_jwt`), never with a key the token names itself;
//! 3. `aud` contains the token endpoint URL (which is also the issuer) or `TokenEndPointAlias`;
//! 4. `exp` present and not past, and not further ahead than `max_assertion_lifetime_secs`;
//!    `nbf` and `iat` not in the future; `iat` not older than `RejectBeforeInMinutes`. All
//!    allow `timestamp_skew_secs`, which only widens what is accepted;
//! 5. `jti` present and, with `preventTokenReuse` (default true), never used before while
//!    unexpired: decided by the host's jti store (shared by every host on the database, keyed
//!    by tenant, client and jti; expired rows cleaned up by the host). The authenticator hands
//!    the jti to the host with the client ([`AuthenticatedClient::jti`]), which records it in
//!    the transaction that stores the request's tokens — one commit per request, not two.
//!
//! identity.xml's `PrivateKeyJWT` cache (`timeout` minutes, `capacity`) sizes an in-memory set
//! of jtis this process has seen presented, on the `cached` crate. It only ever short-cuts a
//! *rejection* — a replay seen here is refused without reaching the database — and the
//! database stays the authority for every acceptance.

use cached::{Cached, TimedSizedCache};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tollgate_core::{
    async_trait, audience_contains, export_plugin, peek_issuer, sdk::BoxError, sdk::Plugin,
    AuthenticatedClient, ClientAuthenticator, ComponentContext, ComponentInfo, HostServices,
    OAuthError, SingleUse, TimeRules, TokenRequest, TrustSource, TrustedParty,
};

/// The `client_assertion_type` this authenticator handles.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The `token_endpoint_auth_method` it implements.
pub const METHOD: &str = "private_key_jwt";
/// The identity.xml cache that fronts the jti store.
pub const CACHE: &str = "PrivateKeyJWT";

/// The authenticator, with its properties and the host's time settings.
pub struct PrivateKeyJwt {
    host: Arc<dyn HostServices>,
    prevent_reuse: bool,
    alias: Option<String>,
    time: TimeRules,
    /// `{scope}\n{jti}` of the assertions presented here; `None` when the cache is off.
    used: Option<Mutex<TimedSizedCache<String, ()>>>,
}

impl PrivateKeyJwt {
    pub fn new(ctx: &ComponentContext) -> Result<Self, BoxError> {
        let minutes: i64 = ctx.properties.parse_or("RejectBeforeInMinutes", 100)?;
        if minutes <= 0 {
            return Err("RejectBeforeInMinutes must be greater than 0".into());
        }
        let alias = ctx
            .properties
            .get("TokenEndPointAlias")
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned);
        let used = ctx
            .settings
            .caches
            .get(CACHE)
            .filter(|c| c.enable && c.capacity > 0 && c.timeout_secs > 0)
            .map(|c| {
                Mutex::new(TimedSizedCache::with_size_and_lifespan(
                    usize::try_from(c.capacity).unwrap_or(usize::MAX),
                    Duration::from_secs(c.timeout_secs),
                ))
            });
        Ok(PrivateKeyJwt {
            host: ctx.host.clone(),
            prevent_reuse: ctx.properties.bool_or("preventTokenReuse", true)?,
            alias,
            time: TimeRules::new(&ctx.settings, minutes, "RejectBeforeInMinutes"),
            used,
        })
    }

    /// Whether this process has not yet seen `jti` of `scope` presented (always `true` with
    /// the cache off), remembering it.
    fn first_use(&self, scope: &str, jti: &str) -> bool {
        let Some(cache) = &self.used else {
            return true;
        };
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.cache_set(format!("{scope}\n{jti}"), ()).is_none()
    }

    /// The claim rules that need no database; the `exp` on success.
    fn check_claims(
        &self,
        claims: &serde_json::Map<String, Value>,
        request: &TokenRequest,
    ) -> Result<i64, OAuthError> {
        let audiences = [Some(request.endpoint_url()), self.alias.as_deref()];
        let mut aud_ok = false;
        for audience in audiences.into_iter().flatten() {
            aud_ok |= audience_contains(claims, audience).map_err(invalid)?;
        }
        if !aud_ok {
            return Err(invalid(format!(
                "aud must contain the token endpoint URL {}{}",
                request.endpoint_url(),
                self.alias
                    .as_deref()
                    .map(|a| format!(" or {a}"))
                    .unwrap_or_default()
            )));
        }
        self.time.check(claims, self.host.now()).map_err(invalid)
    }
}

fn invalid(reason: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(reason)
}

fn string_claim<'c>(claims: &'c serde_json::Map<String, Value>, name: &str) -> Option<&'c str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[async_trait]
impl ClientAuthenticator for PrivateKeyJwt {
    fn can_authenticate(&self, request: &TokenRequest) -> bool {
        request.param("client_assertion_type").is_some()
            || request.param("client_assertion").is_some()
    }

    async fn authenticate(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let assertion = match request.param("client_assertion") {
            Some(a) if !a.is_empty() => a,
            _ => {
                return Err(OAuthError::invalid_request(
                    "client_assertion is required with client_assertion_type",
                ))
            }
        };
        if request.param("client_assertion_type") != Some(ASSERTION_TYPE) {
            return Err(invalid(format!(
                "client_assertion_type must be {ASSERTION_TYPE}"
            )));
        }
        let unverified = peek_issuer(assertion)
            .ok_or_else(|| invalid("the client assertion is not a signed JWT of at most 16 KiB"))?;
        let (Some(iss), Some(sub)) = (unverified.iss(), unverified.sub()) else {
            return Err(invalid("the client assertion needs iss and sub"));
        };
        if iss != sub {
            return Err(invalid("iss and sub must both be the client_id"));
        }
        if request.param("client_id").is_some_and(|id| id != iss) {
            return Err(invalid(
                "client_id does not match the client assertion's iss",
            ));
        }
        let client_id = iss.to_owned();
        let source = TrustSource::Client {
            tenant: request.tenant().to_string(),
            client_id: client_id.clone(),
        };
        let verified = self
            .host
            .validate_jwt(assertion, &source)
            .await
            .map_err(|e| e.into_oauth(self.host.as_ref(), invalid))?;
        match &verified.party {
            TrustedParty::Client { auth_method, .. } if auth_method == METHOD => {}
            TrustedParty::Client { auth_method, .. } => {
                return Err(invalid(format!(
                    "the client is registered for {auth_method}, not {METHOD}"
                )))
            }
            TrustedParty::IdentityProvider { .. } => {
                return Err(invalid("the client assertion's issuer is not a client"))
            }
        }
        let claims = &verified.claims;
        // The verified claims must be the ones the client was found by.
        if string_claim(claims, "iss") != Some(&client_id)
            || string_claim(claims, "sub") != Some(&client_id)
        {
            return Err(invalid("iss and sub must both be the client_id"));
        }
        let exp = self.check_claims(claims, request)?;
        let jti = match claims.get("jti") {
            Some(Value::String(jti)) if !jti.is_empty() => jti,
            Some(_) => return Err(invalid("jti must be a non-empty string")),
            None => return Err(invalid("the client assertion has no jti")),
        };
        let jti = self.prevent_reuse.then(|| SingleUse {
            scope: format!("private-key-jwt\n{}\n{client_id}", request.tenant()),
            jti: jti.clone(),
            expires_at: exp.saturating_add(self.time.skew),
        });
        if let Some(jti) = &jti {
            // Spent from here on: the host records it whatever becomes of the request.
            if !self.first_use(&jti.scope, &jti.jti) {
                return Err(invalid("the client assertion was already used (jti)"));
            }
        }
        Ok(AuthenticatedClient {
            client_id,
            auth_method: METHOD.into(),
            jti,
        })
    }
}

/// The plugin's one component.
pub fn plugin() -> Plugin {
    Plugin::new().client_authenticator(
        ComponentInfo::client_authenticator("private-key-jwt")
            .alias("org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator")
            .provides(METHOD)
            .property(
                "preventTokenReuse",
                Some("true"),
                "refuse a client assertion whose jti was already used and is unexpired",
            )
            .property(
                "RejectBeforeInMinutes",
                Some("100"),
                "refuse a client assertion whose iat is older than this",
            )
            .property(
                "TokenEndPointAlias",
                None,
                "another audience accepted besides the token endpoint URL",
            )
            .description("private_key_jwt: clients authenticate with a JWT signed by their own key"),
        |ctx| PrivateKeyJwt::new(&ctx),
    )
}

export_plugin!(plugin());

#[cfg(test)]
mod tests;
