//! Properties of the validator on untrusted input, through its public entry points
//! (`Jws::parse`, `JwksValidator::validate`) and the SDK's `TestHost`: nothing panics, a
//! well-signed JWT verifies, and a JWT with any segment changed never does. fuzz/ has the
//! coverage-guided counterpart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::sync::OnceLock;
use tollgate_core::sdk::TestHost;
use tollgate_core::{JwtValidator, TrustMaterial, TrustSource, TrustedParty};
use tollgate_jwks_validator::{JwksValidator, Jws};

const RSA_PEM: &str = include_str!("../../../tests/fixtures/keys/rsa-2048.pem");
const RSA_JWK: &str = include_str!("../../../tests/fixtures/keys/rsa-2048.jwk.json");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The signing keys (RSA, EC P-256 and P-384, Ed25519), by kid, with the algorithm each signs
/// with; the validator trusts the public halves.
struct Fixture {
    signers: Vec<(&'static str, Algorithm, EncodingKey)>,
    validator: JwksValidator,
    source: TrustSource,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rng = SystemRandom::new();
        let mut rsa: Value = serde_json::from_str(RSA_JWK).unwrap();
        rsa["kid"] = "rsa".into();
        let mut keys = vec![rsa];
        let mut signers = vec![
            (
                "rsa",
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
            ),
            (
                "rsa",
                Algorithm::PS384,
                EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
            ),
        ];
        for (kid, crv, alg, signing) in [
            (
                "p256",
                "P-256",
                Algorithm::ES256,
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            ),
            (
                "p384",
                "P-384",
                Algorithm::ES384,
                &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            ),
        ] {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).unwrap();
            let point = pair.public_key().as_ref();
            let len = (point.len() - 1) / 2;
            keys.push(json!({"kty": "EC", "crv": crv, "kid": kid,
                "x": b64(&point[1..=len]), "y": b64(&point[1 + len..])}));
            signers.push((kid, alg, EncodingKey::from_ec_der(pkcs8.as_ref())));
        }
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        keys.push(json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed",
            "x": b64(pair.public_key().as_ref())}));
        signers.push((
            "ed",
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(pkcs8.as_ref()),
        ));

        let host = TestHost::new(1_700_000_000);
        let source = TrustSource::IdentityProvider {
            tenant: "carbon.super".into(),
            name: "https://idp.example.com".into(),
        };
        host.add_trust(
            source.clone(),
            TrustMaterial {
                party: TrustedParty::IdentityProvider {
                    id: "1".into(),
                    name: "https://idp.example.com".into(),
                    alias: "https://localhost:9443/oauth2/token".into(),
                },
                jwks_uri: None,
                keys,
            },
        );
        Fixture {
            signers,
            validator: JwksValidator::new(host),
            source,
        }
    })
}

fn validate(jwt: &str) -> bool {
    let fixture = fixture();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(fixture.validator.validate(jwt, &fixture.source))
        .is_ok()
}

/// A JWT signed by signer `which` (an index into the fixture's), with `sub`, with or without
/// its `kid`.
fn signed(which: Index, sub: &str, with_kid: bool) -> String {
    let (kid, alg, key) = which.get(&fixture().signers);
    let alg_name = serde_json::to_value(alg).unwrap();
    let mut header = json!({"alg": alg_name, "typ": "JWT"});
    if with_kid {
        header["kid"] = (*kid).into();
    }
    let claims = json!({"iss": "https://idp.example.com", "sub": sub, "exp": 1_700_003_600});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, *alg).unwrap();
    format!("{input}.{signature}")
}

/// `s` with the bytes in `at..at + cut` replaced by `with` (`s` is ASCII).
fn splice(s: &str, at: Index, cut: usize, with: &str) -> String {
    let at = at.index(s.len() + 1);
    let end = (at + cut).min(s.len());
    format!("{}{with}{}", &s[..at], &s[end..])
}

/// Replacements: base64url characters, and a few that are not.
fn replacement() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,4}",
        select(vec!["=", "+", "/", " ", "%", "\u{0}", "é", "AA==", "."]).prop_map(str::to_owned),
    ]
}

proptest! {
    #[test]
    fn validation_never_panics_on_any_text(
        text in "(?s).{0,256}",
        jwtish in "[A-Za-z0-9_.-]{0,256}",
    ) {
        for jwt in [text, jwtish] {
            let parsed = Jws::parse(&jwt).is_ok();
            prop_assert!(!validate(&jwt) || parsed);
        }
    }

    #[test]
    fn a_well_signed_jwt_verifies(which in any::<Index>(), sub in "(?s).{0,16}", with_kid in any::<bool>()) {
        prop_assert!(validate(&signed(which, &sub, with_kid)));
    }

    #[test]
    fn a_changed_signature_never_verifies(
        which in any::<Index>(),
        with_kid in any::<bool>(),
        at in any::<Index>(),
        cut in 0usize..4,
        with in replacement(),
    ) {
        let jwt = signed(which, "alice", with_kid);
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let changed = splice(signature, at, cut, &with);
        prop_assume!(changed != signature);
        let jwt = format!("{input}.{changed}");
        prop_assert!(!validate(&jwt), "{}", jwt);
    }

    #[test]
    fn a_changed_header_or_payload_never_verifies(
        which in any::<Index>(),
        with_kid in any::<bool>(),
        at in any::<Index>(),
        cut in 0usize..4,
        with in replacement(),
    ) {
        let jwt = signed(which, "alice", with_kid);
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let changed = splice(input, at, cut, &with);
        prop_assume!(changed != input);
        let jwt = format!("{changed}.{signature}");
        prop_assert!(!validate(&jwt), "{}", jwt);
    }
}
