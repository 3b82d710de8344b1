//! The validator against `TestHost` (the SDK's stand-in for the server), with Ed25519 keys made
//! by ring and JWTs signed by jsonwebtoken.

use super::*;
use jsonwebtoken::{EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use tollgate_core::serde_json::json;
use tollgate_core::{sdk::TestHost, HostSettings, Properties, TrustMaterial, TrustedParty};

const PARTNER: &str = "https://partner.example.com";

/// A fresh Ed25519 key: what signs, and its public JWK.
fn key(kid: &str) -> (EncodingKey, Value) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": kid,
                     "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
    (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
}

fn sign(key: &EncodingKey, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &json!({"iss": PARTNER, "sub": "alice"}), key).unwrap()
}

fn partner(tenant: &str) -> TrustSource {
    TrustSource::IdentityProvider {
        tenant: tenant.into(),
        name: PARTNER.into(),
    }
}

/// A validator pinning `jwks` for the partner, whom the host has registered in carbon.super.
fn validator(jwks: &Value) -> Result<PinnedKeyValidator, BoxError> {
    let host = TestHost::new(0);
    host.add_trust(
        partner("carbon.super"),
        TrustMaterial {
            party: TrustedParty::IdentityProvider {
                id: "7".into(),
                name: PARTNER.into(),
                alias: "https://tollgate/oauth2/token".into(),
            },
            jwks_uri: Some("https://partner.example.com/jwks".into()),
            keys: vec![],
        },
    );
    PinnedKeyValidator::new(&ComponentContext {
        properties: Properties::new(vec![
            (
                "issuers".into(),
                format!("https://other.example.com, {PARTNER}"),
            ),
            ("PinnedJwks".into(), jwks.to_string()),
        ]),
        settings: HostSettings::default(),
        host,
    })
}

#[tokio::test]
async fn a_jwt_signed_with_a_pinned_key_verifies() {
    let (signing, jwk) = key("p1");
    let v = validator(&json!({"keys": [jwk]})).unwrap();
    for kid in [Some("p1"), None] {
        let verified = v
            .validate(&sign(&signing, kid), &partner("carbon.super"))
            .await
            .unwrap();
        assert_eq!(verified.claims["sub"], "alice");
        assert!(
            matches!(verified.party, TrustedParty::IdentityProvider { ref id, .. } if id == "7")
        );
    }
}

#[tokio::test]
async fn anything_else_is_rejected() {
    let (signing, jwk) = key("p1");
    let (other, _) = key("p1");
    let v = validator(&json!({"keys": [jwk]})).unwrap();
    let src = partner("carbon.super");
    let rejected = |r: Result<VerifiedJwt, JwtError>| match r {
        Err(JwtError::Rejected(reason)) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    };
    // Another key, even under the pinned kid; a kid that is not pinned.
    assert!(rejected(v.validate(&sign(&other, Some("p1")), &src).await).contains("does not verify"));
    assert!(rejected(v.validate(&sign(&signing, Some("p2")), &src).await).contains("kid"));
    // alg none and HMAC never match a pinned key.
    let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice"}"#);
    for alg in ["none", "HS256"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
        assert!(
            v.validate(&format!("{header}.{payload}.c2ln"), &src)
                .await
                .is_err(),
            "{alg}"
        );
    }
    let crit = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","crit":["x"]}"#);
    assert!(rejected(v.validate(&format!("{crit}.{payload}.c2ln"), &src).await).contains("crit"));
    assert!(v
        .validate(&"a".repeat(MAX_JWT_BYTES + 1), &src)
        .await
        .is_err());
    // Right key, but the host does not know the partner in this tenant.
    assert!(
        rejected(v.validate(&sign(&signing, None), &partner("acme")).await).contains("unknown")
    );
}

#[test]
fn it_speaks_only_for_the_listed_identity_providers() {
    let (_, jwk) = key("p1");
    let v = validator(&json!({"keys": [jwk]})).unwrap();
    assert!(v.can_validate(&partner("any-tenant")));
    assert!(!v.can_validate(&TrustSource::IdentityProvider {
        tenant: "carbon.super".into(),
        name: "https://idp.example.com".into()
    }));
    assert!(!v.can_validate(&TrustSource::Client {
        tenant: "carbon.super".into(),
        client_id: PARTNER.into()
    }));
}

#[test]
fn unusable_pinned_keys_stop_start_up() {
    let (_, jwk) = key("p1");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut k = jwk.clone();
        change(&mut k);
        validator(&json!({"keys": [k]}))
            .err()
            .map(|e| e.to_string())
    };
    assert!(with(&|k| {
        k.as_object_mut().unwrap().remove("alg");
    })
    .unwrap()
    .contains("alg is required"));
    assert!(with(&|k| k["alg"] = "HS256".into())
        .unwrap()
        .contains("HS256"));
    assert!(with(&|k| k["alg"] = "ES256".into())
        .unwrap()
        .contains("kty EC"));
    assert!(with(&|k| k["d"] = "AA".into()).unwrap().contains("private"));
    let short_rsa = json!({"kty": "RSA", "alg": "RS256", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([0xff; 128])});
    assert!(validator(&json!({"keys": [short_rsa]}))
        .err()
        .unwrap()
        .to_string()
        .contains("2048"));
    assert!(validator(&json!({"keys": []})).is_err());
    assert!(validator(&json!("nope")).is_err());
}
