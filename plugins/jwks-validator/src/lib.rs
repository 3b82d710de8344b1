//! # tollgate-jwks-validator
//!
//! Tollgate's bundled JWT signature validator (CONTRACT §4, §6), registered as `jwks-validator`
//! and under WSO2's `org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator`.
//!
//! Given a JWT and a trust source (an identity provider or a client of a tenant), it asks the
//! host for the source's keys — static ones (certificates, inline `jwks`) and, for a `jwks_uri`,
//! the shared key service's cached set — picks the key the JWT's `kid` names, verifies the
//! signature with aws-lc-rs (the key parsed once and kept: [`KeyCache`]), and returns the header
//! and claims. Claim rules (`aud`, `exp`, `jti`, …) are the caller's.
//!
//! What it never does, whatever the token says:
//! - accept `alg: none` (in any case), an HMAC algorithm, or anything outside RS256/384/512,
//!   PS256/384/512, ES256, ES384 and EdDSA;
//! - use a key the token names itself (`jku`, `x5u`, `jwk`, `x5c` are ignored: keys come only
//!   from what an operator registered);
//! - use a key whose type, curve or `alg` does not fit the JWT's `alg`;
//! - read a JWT over [`MAX_JWT_BYTES`], a JWE (five segments), a nested JWT (`cty: JWT`), or
//!   one with a `crit` header (it understands no extension);
//! - read a header or claims that name a member twice ([`decode_segment`]): which of two `alg`s
//!   or `iss`s counts is exactly where parsers disagree;
//! - try more than [`MAX_CANDIDATES`] keys for one JWT (a JWT without `kid` is tried against
//!   the keys that fit its `alg`; a key without `kid` fits any `kid`).
//!
//! The host hands over only the keys for the JWT's `kid`; a `kid` missing from a fetched set
//! makes it re-fetch the set once (rate-limited per URI by the key service), which is how an
//! IdP's key rotation is followed unannounced.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use std::sync::Arc;
use tollgate_core::{
    async_trait, decode_segment, export_plugin, jws_segments, sdk::Plugin, ComponentInfo,
    HostServices, JwtError, JwtValidator, TrustSource, VerifiedJwt,
};

mod keys;
pub use keys::{fits, Algorithm, KeyCache, ALGORITHMS, MAX_CACHED_KEYS};

pub use tollgate_core::MAX_JWT_BYTES;
/// At most this many keys are tried for one JWT.
pub const MAX_CANDIDATES: usize = 8;

/// The validator: the host it asks for keys, and the keys it has parsed.
pub struct JwksValidator {
    host: Arc<dyn HostServices>,
    keys: KeyCache,
}

impl JwksValidator {
    pub fn new(host: Arc<dyn HostServices>) -> Self {
        JwksValidator {
            host,
            keys: KeyCache::default(),
        }
    }

    /// The parsed keys it keeps.
    pub fn key_cache(&self) -> &KeyCache {
        &self.keys
    }
}

fn reject(reason: impl Into<String>) -> JwtError {
    JwtError::Rejected(reason.into())
}

/// A compact JWS, split and decoded, not yet verified.
#[derive(Debug)]
pub struct Jws<'a> {
    /// `header.payload`, the signed bytes.
    pub signing_input: &'a str,
    pub signature: &'a str,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub alg: Algorithm,
    pub kid: Option<String>,
}

impl<'a> Jws<'a> {
    /// Splits and decodes `jwt`, applying every rule that needs no key.
    pub fn parse(jwt: &'a str) -> Result<Jws<'a>, JwtError> {
        if jwt.len() > MAX_JWT_BYTES {
            return Err(reject(format!(
                "the JWT is longer than {MAX_JWT_BYTES} bytes"
            )));
        }
        let Some([header, payload, signature]) = jws_segments(jwt) else {
            return Err(reject(if jwt.split('.').count() == 5 {
                "an encrypted JWT (JWE) is not accepted: a signed JWT is required"
            } else {
                "not a signed JWT in compact serialization"
            }));
        };
        let signing_input = &jwt[..header.len() + 1 + payload.len()];
        let header = decode_segment(header).map_err(|e| reject(format!("the JOSE header {e}")))?;
        let alg_value = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = match Algorithm::named(alg_value) {
            Some(alg) => alg,
            None if alg_value.eq_ignore_ascii_case("none") => {
                return Err(reject("alg none is never accepted"))
            }
            None if alg_value.to_ascii_uppercase().starts_with("HS") => {
                return Err(reject(
                    "HMAC algorithms are never accepted: sign with an asymmetric key",
                ))
            }
            None if alg_value.is_empty() => return Err(reject("the JOSE header has no alg")),
            None => {
                return Err(reject(format!(
                    "alg {alg_value:?} is not accepted (RS256/384/512, PS256/384/512, \
                     ES256, ES384, EdDSA)"
                )))
            }
        };
        if let Some(crit) = header.get("crit") {
            return Err(reject(format!(
                "crit {crit} names header extensions this validator does not understand"
            )));
        }
        if header
            .get("cty")
            .and_then(Value::as_str)
            .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
        {
            return Err(reject("a nested JWT (cty: JWT) is not accepted"));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(reject("kid must be a string")),
        };
        let claims =
            decode_segment(payload).map_err(|e| reject(format!("the JWT claims set {e}")))?;
        if signature.is_empty() {
            return Err(reject("the JWT is not signed"));
        }
        Ok(Jws {
            signing_input,
            signature,
            header,
            claims,
            alg,
            kid,
        })
    }

    /// Whether `key` (a public JWK) verifies this JWS's signature, the key parsed by (or kept
    /// in) `cache`. A key that does not fit the algorithm, or cannot be read, does not.
    pub fn verifies_with(&self, key: &Value, cache: &KeyCache) -> bool {
        let Ok(signature) = URL_SAFE_NO_PAD.decode(self.signature) else {
            return false;
        };
        cache.get(key, self.alg).is_some_and(|parsed| {
            parsed
                .verify_sig(self.signing_input.as_bytes(), &signature)
                .is_ok()
        })
    }
}

/// The keys to try: those whose `kid` is the JWT's (or, failing that, those without a `kid`),
/// that fit its algorithm.
fn candidates<'k>(keys: &'k [Value], jws: &Jws) -> Vec<&'k Value> {
    let fitting = |k: &&Value| fits(k, jws.alg);
    let Some(kid) = jws.kid.as_deref() else {
        return keys.iter().filter(fitting).collect();
    };
    let named: Vec<&Value> = keys
        .iter()
        .filter(|k| keys::member(k, "kid") == Some(kid))
        .collect();
    if named.is_empty() {
        keys.iter()
            .filter(|k| k.get("kid").is_none())
            .filter(fitting)
            .collect()
    } else {
        named.into_iter().filter(fitting).collect()
    }
}

#[async_trait]
impl JwtValidator for JwksValidator {
    async fn validate(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        let jws = Jws::parse(jwt)?;
        let material = self.host.trust_material(source).await?;
        let mut keys = material.keys;
        if let Some(uri) = material.jwks_uri.as_deref() {
            // Only the keys for this kid cross over; a kid the set lacks makes the key service
            // re-fetch it (rate-limited), which follows an IdP's key rotation.
            keys.extend(self.host.jwks(uri, jws.kid.as_deref()).await?.keys);
        }
        let candidates = candidates(&keys, &jws);
        if candidates.is_empty() {
            return Err(reject(match &jws.kid {
                Some(kid) => format!(
                    "no {} key with kid {kid:?} is registered for this issuer",
                    jws.alg.name()
                ),
                None => format!("no {} key is registered for this issuer", jws.alg.name()),
            }));
        }
        if candidates
            .iter()
            .take(MAX_CANDIDATES)
            .any(|key| jws.verifies_with(key, &self.keys))
        {
            Ok(VerifiedJwt {
                header: jws.header,
                claims: jws.claims,
                party: material.party,
            })
        } else {
            Err(reject("the JWT signature does not verify"))
        }
    }
}

/// The plugin's one component, as the host sees it.
pub fn plugin() -> Plugin {
    Plugin::new().jwt_validator(
        ComponentInfo::jwt_validator("jwks-validator")
            .alias("org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator")
            .description(
                "Verifies JWT signatures with an IdP's or client's registered keys: jwks_uri \
                 (shared, cached key service), certificates or inline jwks",
            ),
        |ctx| Ok(JwksValidator::new(ctx.host)),
    )
}

export_plugin!(plugin());

#[cfg(test)]
mod tests;
