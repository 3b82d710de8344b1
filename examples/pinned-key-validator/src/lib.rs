//! # pinned-key-validator
//!
//! A JWT validator, built out of tree: for the identity providers it is told about, it verifies
//! signatures only with keys pinned in identity.xml, whatever certificate or `jwksUri` is
//! registered for them through the admin API. For a partner whose signing key should change by
//! a reviewed configuration change, not by whoever holds the admin password or the partner's
//! DNS.
//!
//! ```xml
//! <EventListener name="pinned-key" orderId="5" enable="true">
//!   <Property name="Issuers">https://partner.example.com</Property>
//!   <Property name="PinnedJwks">{"keys": [{"kty": "RSA", "alg": "RS256", "kid": "p-2024",
//!     "n": "…", "e": "AQAB"}]}</Property>
//! </EventListener>
//! ```
//!
//! With an `orderId` below the bundled JWKS validator's (10) it speaks first for the listed
//! identity providers (in every tenant), and for nothing else: every other trust source goes on
//! to the next validator. The identity provider must still be registered and enabled — disabling
//! it through the admin API still shuts it out — but its registered keys are not used.
//!
//! What it never does: accept a key without an `alg`, or an `alg` outside RS256/384/512,
//! PS256/384/512, ES256, ES384, EdDSA (so never `none` or HMAC); use a key whose type does not fit
//! its `alg`, or an RSA key under 2048 bits; use a key the token names itself (`jku`, `jwk`, …);
//! read a JWT over 16 KiB or one with a `crit` header. Claim rules (`aud`, `exp`, `jti`, …)
//! stay the caller's, as for every validator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{jwk::Jwk, Algorithm, DecodingKey};
use std::sync::Arc;
use tollgate_core::serde_json::{self, Value};
use tollgate_core::{
    async_trait, decode_segment, export_plugin, jws_segments, sdk::BoxError, sdk::Plugin,
    ComponentContext, ComponentInfo, HostServices, JwtError, JwtValidator, TrustSource,
    VerifiedJwt, MAX_JWT_BYTES,
};

/// The algorithms a pinned key may have, with the key type (`kty`, `crv`) each needs.
const ALGORITHMS: [(&str, Algorithm, &str, Option<&str>); 9] = [
    ("RS256", Algorithm::RS256, "RSA", None),
    ("RS384", Algorithm::RS384, "RSA", None),
    ("RS512", Algorithm::RS512, "RSA", None),
    ("PS256", Algorithm::PS256, "RSA", None),
    ("PS384", Algorithm::PS384, "RSA", None),
    ("PS512", Algorithm::PS512, "RSA", None),
    ("ES256", Algorithm::ES256, "EC", Some("P-256")),
    ("ES384", Algorithm::ES384, "EC", Some("P-384")),
    ("EdDSA", Algorithm::EdDSA, "OKP", Some("Ed25519")),
];

/// RSA keys shorter than this are never used.
const MIN_RSA_BYTES: usize = 256;

/// One pinned key, ready to verify.
struct PinnedKey {
    kid: Option<String>,
    alg: &'static str,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The validator: the identity providers it speaks for, and their keys.
pub struct PinnedKeyValidator {
    host: Arc<dyn HostServices>,
    issuers: Vec<String>,
    keys: Vec<PinnedKey>,
}

impl PinnedKeyValidator {
    /// Reads `Issuers` (comma-separated IdP names) and `PinnedJwks` (a JWKS document); both are
    /// required, and every pinned key must be usable — a key silently left out would turn into
    /// a rejected partner at the worst time.
    pub fn new(ctx: &ComponentContext) -> Result<Self, BoxError> {
        let issuers: Vec<String> = ctx
            .properties
            .get("Issuers")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect();
        if issuers.is_empty() {
            return Err("property Issuers is required (identity provider names)".into());
        }
        let jwks: Value = serde_json::from_str(
            ctx.properties
                .get("PinnedJwks")
                .ok_or("property PinnedJwks is required")?,
        )
        .map_err(|e| format!("PinnedJwks is not JSON: {e}"))?;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .filter(|keys| !keys.is_empty())
            .ok_or("PinnedJwks must be {\"keys\": [...]} with at least one key")?
            .iter()
            .enumerate()
            .map(|(i, key)| pinned(key).map_err(|e| format!("PinnedJwks keys[{i}]: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(PinnedKeyValidator {
            host: ctx.host.clone(),
            issuers,
            keys,
        })
    }
}

/// Checks one JWK of `PinnedJwks` and makes it a verifying key.
fn pinned(jwk: &Value) -> Result<PinnedKey, String> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    if ["d", "p", "q", "k"].iter().any(|m| jwk.get(m).is_some()) {
        return Err("holds private key material: pin public keys only".into());
    }
    let alg = text("alg").ok_or("alg is required")?;
    let &(alg, algorithm, kty, crv) = ALGORITHMS
        .iter()
        .find(|(name, ..)| *name == alg)
        .ok_or_else(|| format!("alg {alg:?} is not an accepted asymmetric algorithm"))?;
    if text("kty") != Some(kty) || (crv.is_some() && text("crv") != crv) {
        return Err(format!(
            "alg {alg} needs kty {kty}{}",
            crv.map(|c| format!(", crv {c}")).unwrap_or_default()
        ));
    }
    if kty == "RSA" {
        let n = URL_SAFE_NO_PAD
            .decode(text("n").unwrap_or_default())
            .map_err(|_| "n is not base64url")?;
        if n.iter().skip_while(|b| **b == 0).count() < MIN_RSA_BYTES {
            return Err("RSA keys must have at least 2048 bits".into());
        }
    }
    let parsed: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
    let key = DecodingKey::from_jwk(&parsed).map_err(|e| e.to_string())?;
    Ok(PinnedKey {
        kid: text("kid").map(str::to_owned),
        alg,
        algorithm,
        key,
    })
}

fn reject(reason: impl Into<String>) -> JwtError {
    JwtError::Rejected(reason.into())
}

#[async_trait]
impl JwtValidator for PinnedKeyValidator {
    fn can_validate(&self, source: &TrustSource) -> bool {
        matches!(source, TrustSource::IdentityProvider { name, .. } if self.issuers.contains(name))
    }

    async fn validate(&self, jwt: &str, source: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        if jwt.len() > MAX_JWT_BYTES {
            return Err(reject(format!(
                "the JWT is longer than {MAX_JWT_BYTES} bytes"
            )));
        }
        // The host's own parsing: three segments, base64url, one JSON object each with no
        // member named twice (a token with two `alg`s means different things to different
        // parsers).
        let [header, payload, signature] = jws_segments(jwt)
            .filter(|[_, _, signature]| !signature.is_empty())
            .ok_or_else(|| reject("not a signed JWT in compact serialization"))?;
        let signing_input = &jwt[..jwt.len() - signature.len() - 1];
        let header = decode_segment(header).map_err(|e| reject(format!("the header {e}")))?;
        let claims = decode_segment(payload).map_err(|e| reject(format!("the claims {e}")))?;
        if header.contains_key("crit") {
            return Err(reject(
                "crit names header extensions this validator does not understand",
            ));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kid = header.get("kid").and_then(Value::as_str);
        let verified = self
            .keys
            .iter()
            .filter(|k| {
                k.alg == alg && (kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            })
            .any(|k| {
                jsonwebtoken::crypto::verify(
                    signature,
                    signing_input.as_bytes(),
                    &k.key,
                    k.algorithm,
                )
                .unwrap_or(false)
            });
        if !verified {
            return Err(reject(format!(
                "the signature does not verify with a pinned {alg} key{}",
                kid.map(|k| format!(" (kid {k:?})")).unwrap_or_default()
            )));
        }
        // The party (and whether it is still registered and enabled) is the host's to say.
        let party = self.host.trust_material(source).await?.party;
        Ok(VerifiedJwt {
            header,
            claims,
            party,
        })
    }
}

/// The plugin's one component: what `export_plugin!` exports, and what tests construct.
pub fn plugin() -> Plugin {
    Plugin::new().jwt_validator(
        ComponentInfo::jwt_validator("pinned-key")
            .alias("com.example.tollgate.PinnedKeyJWTValidator")
            .property("Issuers", None, "identity provider names, comma-separated (required)")
            .property("PinnedJwks", None, "a JWKS document of public keys, each with alg (required)")
            .description("Verifies the listed identity providers' JWTs with keys pinned in identity.xml only"),
        |ctx| PinnedKeyValidator::new(&ctx),
    )
}

export_plugin!(plugin());

#[cfg(test)]
mod tests;
