//! The bundled JWT validator (plugins/jwks-validator): arbitrary bytes validated as a JWT
//! against a fixed set of RSA, EC P-256, EC P-384 and Ed25519 keys, registered as static keys (an
//! identity provider) and behind a `jwks_uri` (a client) — inputs of even length go to the one,
//! odd to the other — through a fixed host. `Jws::parse` is also called on its own.
//!
//! The seed corpus holds JWTs signed by the private halves of these keys (throwaway keys made
//! for the seeds; the RSA one is tests/fixtures/keys/rsa-2048.pem), so that mutations reach
//! signature verification.
//!
//! Input: the JWT text (any bytes; not UTF-8 is read lossily).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use tollgate_core::{
    async_trait, HostError, HostServices, Jwks, JwtError, JwtValidator, LogLevel, TrustMaterial,
    TrustSource, TrustedParty, VerifiedJwt, MAX_JWT_BYTES,
};
use tollgate_jwks_validator::{JwksValidator, Jws};

const RSA_JWK: &str = include_str!("../../tests/fixtures/keys/rsa-2048.jwk.json");
const JWKS_URI: &str = "https://client.example.com/jwks";

fn keys() -> Vec<Value> {
    let mut rsa: Value = serde_json::from_str(RSA_JWK).expect("the RSA test JWK is JSON");
    rsa["kid"] = "rsa".into();
    let p256 = json!({"kty": "EC", "crv": "P-256",
        "x": "cKeP5FspuLh08sZnqm3cKzXl4wHx31Ab7I-L2YKlDQw",
        "y": "Hpg6mfiZi02HQ6VuXF2FQMhuCvHPxREgnu9NQCBd6Do"});
    let mut p256_kid = p256.clone();
    p256_kid["kid"] = "p256".into();
    vec![
        rsa,
        p256_kid,
        // The same key without a kid: it fits any kid.
        p256,
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "use": "sig",
            "x": "uK5KAUuUSyWInRugxy11Y6ebfu8jXFM3OAXuqEvaRf4"}),
        json!({"kty": "EC", "crv": "P-384", "kid": "p384", "alg": "ES384",
            "x": "FjLDpivbEOhEme_dNf_L1I19KFiG8fO49-CqKaB4csQQN8QwopTWDSWAhUiYFo8Z",
            "y": "A2XP_0a8RFwQLl3W_bmfUjho_RYf4bwE8XswiouNI1pA8ozWiX_iXLAjNA5oaaAB"}),
    ]
}

/// The host the validator asks: a fixed identity provider with static keys and a fixed client
/// with a `jwks_uri`, both holding [`keys`]. (Not the SDK's `TestHost`: it records every
/// `jwks` call, and memory that grows with each run makes libFuzzer run LeakSanitizer on every
/// input.)
struct FixedHost {
    idp: TrustMaterial,
    client: TrustMaterial,
    jwks: Jwks,
}

#[async_trait]
impl HostServices for FixedHost {
    async fn validate_jwt(&self, _: &str, _: &TrustSource) -> Result<VerifiedJwt, JwtError> {
        Err(JwtError::Unavailable("not used".into()))
    }

    async fn trust_material(&self, source: &TrustSource) -> Result<TrustMaterial, JwtError> {
        Ok(match source {
            TrustSource::IdentityProvider { .. } => self.idp.clone(),
            TrustSource::Client { .. } => self.client.clone(),
        })
    }

    async fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, JwtError> {
        assert_eq!(uri, JWKS_URI);
        Ok(self.jwks.for_kid(kid))
    }

    async fn check_and_store_jti(&self, _: &str, _: &str, _: i64) -> Result<bool, HostError> {
        Ok(true)
    }

    fn now(&self) -> i64 {
        1_700_000_000
    }

    fn log(&self, _: LogLevel, _: &str) {}

    async fn call(&self, _: &str, _: Value) -> Result<Value, HostError> {
        Err(HostError("not used".into()))
    }
}

struct Fixture {
    validator: JwksValidator,
    idp: TrustSource,
    client: TrustSource,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let host = FixedHost {
            idp: TrustMaterial {
                party: TrustedParty::IdentityProvider {
                    id: "1".into(),
                    name: "https://idp.example.com".into(),
                    alias: "https://localhost:9443/oauth2/token".into(),
                },
                jwks_uri: None,
                keys: keys(),
            },
            client: TrustMaterial {
                party: TrustedParty::Client {
                    client_id: "c1".into(),
                    auth_method: "private_key_jwt".into(),
                },
                jwks_uri: Some(JWKS_URI.into()),
                keys: Vec::new(),
            },
            jwks: Jwks { keys: keys() },
        };
        Fixture {
            validator: JwksValidator::new(Arc::new(host)),
            idp: TrustSource::IdentityProvider {
                tenant: "carbon.super".into(),
                name: "https://idp.example.com".into(),
            },
            client: TrustSource::Client {
                tenant: "carbon.super".into(),
                client_id: "c1".into(),
            },
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let jwt = String::from_utf8_lossy(data);
    let parsed = Jws::parse(&jwt);
    if let Ok(jws) = &parsed {
        assert!(jwt.len() <= MAX_JWT_BYTES);
        assert!(!jws.signature.is_empty());
        assert_eq!(jwt.split('.').count(), 3);
    }
    let fixture = fixture();
    let source = if data.len() % 2 == 0 {
        &fixture.idp
    } else {
        &fixture.client
    };
    match futures::executor::block_on(fixture.validator.validate(&jwt, source)) {
        Ok(verified) => {
            let jws = parsed.as_ref().expect("a verified JWT parses");
            assert_eq!(verified.claims, jws.claims);
            assert!(["RS", "PS", "ES", "Ed"]
                .iter()
                .any(|p| jws.alg.name().starts_with(p)));
        }
        Err(JwtError::Rejected(_)) => {}
        Err(JwtError::Unavailable(reason)) => panic!("unavailable: {reason}"),
    }
});
