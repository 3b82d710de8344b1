//! The validator's rules, against real signatures (RSA test keys from tests/fixtures/keys, EC and
//! Ed25519 keys made by ring) and the SDK's `TestHost` standing in for the host.

use super::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::json;
use tollgate_core::sdk::TestHost;
use tollgate_core::{Jwks, TrustMaterial, TrustedParty};

const RSA_PEM: &str = include_str!("../../../tests/fixtures/keys/rsa-2048.pem");
const RSA_JWK: &str = include_str!("../../../tests/fixtures/keys/rsa-2048.jwk.json");
const RSA_B_PEM: &str = include_str!("../../../tests/fixtures/keys/rsa-2048-b.pem");
const RSA_B_JWK: &str = include_str!("../../../tests/fixtures/keys/rsa-2048-b.jwk.json");

/// A signing key and its public JWK.
pub struct TestKey {
    pub encoding: EncodingKey,
    pub jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn rsa(kid: &str) -> TestKey {
    rsa_from(RSA_PEM, RSA_JWK, kid)
}

pub fn rsa_b(kid: &str) -> TestKey {
    rsa_from(RSA_B_PEM, RSA_B_JWK, kid)
}

fn rsa_from(pem: &str, jwk: &str, kid: &str) -> TestKey {
    let mut jwk: Value = serde_json::from_str(jwk).unwrap();
    jwk["kid"] = kid.into();
    TestKey {
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        jwk,
    }
}

pub fn ec(kid: &str, p384: bool) -> TestKey {
    let rng = SystemRandom::new();
    let alg = if p384 {
        &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING
    };
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let len = (point.len() - 1) / 2;
    TestKey {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": if p384 {"P-384"} else {"P-256"}, "kid": kid,
                    "x": b64(&point[1..=len]), "y": b64(&point[1 + len..])}),
    }
}

pub fn ed25519(kid: &str) -> TestKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    TestKey {
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key().as_ref())}),
    }
}

/// A JWS with exactly this header and these claims, signed by `key` with `alg`.
pub fn sign(header: Value, claims: Value, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{signature}")
}

fn claims() -> Value {
    json!({"iss": "https://idp.example", "sub": "alice", "aud": "tollgate", "exp": 2_000_000_000})
}

fn idp() -> TrustSource {
    TrustSource::IdentityProvider {
        tenant: "carbon.super".into(),
        name: "https://idp.example".into(),
    }
}

fn party() -> TrustedParty {
    TrustedParty::IdentityProvider {
        id: "1".into(),
        name: "https://idp.example".into(),
        alias: "tollgate".into(),
    }
}

const URI: &str = "https://idp.example/jwks";

/// A host whose IdP is trusted with `keys` (static) and, if `fetched` is some, a JWKS URI
/// serving those keys.
fn host(keys: Vec<Value>, fetched: Option<Vec<Value>>) -> Arc<TestHost> {
    let host = TestHost::new(1_700_000_000);
    host.add_trust(
        idp(),
        TrustMaterial {
            party: party(),
            jwks_uri: fetched.as_ref().map(|_| URI.to_string()),
            keys,
        },
    );
    if let Some(keys) = fetched {
        host.set_jwks(URI, Jwks { keys });
    }
    host
}

async fn validate(host: &Arc<TestHost>, jwt: &str) -> Result<VerifiedJwt, JwtError> {
    JwksValidator::new(host.clone()).validate(jwt, &idp()).await
}

fn reason(result: Result<VerifiedJwt, JwtError>) -> String {
    match result {
        Err(JwtError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn every_accepted_algorithm_verifies_with_its_key() {
    let cases = [
        (rsa("r"), Algorithm::RS256, "RS256"),
        (rsa("r"), Algorithm::RS384, "RS384"),
        (rsa("r"), Algorithm::RS512, "RS512"),
        (rsa("r"), Algorithm::PS256, "PS256"),
        (rsa("r"), Algorithm::PS384, "PS384"),
        (rsa("r"), Algorithm::PS512, "PS512"),
        (ec("e", false), Algorithm::ES256, "ES256"),
        (ec("e", true), Algorithm::ES384, "ES384"),
        (ed25519("o"), Algorithm::EdDSA, "EdDSA"),
    ];
    for (key, alg, name) in cases {
        let kid = key.jwk["kid"].as_str().unwrap().to_string();
        let host = host(vec![key.jwk.clone()], None);
        let jwt = sign(
            json!({"alg": name, "kid": kid}),
            claims(),
            &key.encoding,
            alg,
        );
        let verified = validate(&host, &jwt)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.claims["sub"], "alice");
        assert_eq!(verified.header["alg"], name);
        assert_eq!(verified.party, party());
    }
}

#[tokio::test]
async fn keys_are_chosen_by_kid_and_a_jwt_without_kid_tries_fitting_keys() {
    let (a, b, e) = (rsa("a"), rsa_b("b"), ec("e", false));
    let host = host(vec![a.jwk.clone(), b.jwk.clone(), e.jwk.clone()], None);
    let by_b = sign(
        json!({"alg": "RS256", "kid": "b"}),
        claims(),
        &b.encoding,
        Algorithm::RS256,
    );
    assert!(validate(&host, &by_b).await.is_ok());
    // Signed by b but naming a: a's key is tried, and fails.
    let lying = sign(
        json!({"alg": "RS256", "kid": "a"}),
        claims(),
        &b.encoding,
        Algorithm::RS256,
    );
    assert!(reason(validate(&host, &lying).await).contains("does not verify"));
    let no_kid = sign(
        json!({"alg": "RS256"}),
        claims(),
        &b.encoding,
        Algorithm::RS256,
    );
    assert!(validate(&host, &no_kid).await.is_ok());
    let unknown = sign(
        json!({"alg": "RS256", "kid": "zz"}),
        claims(),
        &b.encoding,
        Algorithm::RS256,
    );
    assert!(reason(validate(&host, &unknown).await).contains("kid \"zz\""));
}

#[tokio::test]
async fn a_key_without_kid_fits_any_kid() {
    let mut key = rsa("x");
    key.jwk.as_object_mut().unwrap().remove("kid");
    let host = host(vec![key.jwk.clone()], None);
    let jwt = sign(
        json!({"alg": "RS256", "kid": "whatever"}),
        claims(),
        &key.encoding,
        Algorithm::RS256,
    );
    assert!(validate(&host, &jwt).await.is_ok());
}

#[tokio::test]
async fn the_fetched_set_is_asked_for_the_jwts_kid() {
    let (old, new) = (rsa("old"), rsa_b("new"));
    let host = host(vec![], Some(vec![old.jwk.clone()]));
    let jwt = sign(
        json!({"alg": "RS256", "kid": "old"}),
        claims(),
        &old.encoding,
        Algorithm::RS256,
    );
    assert!(validate(&host, &jwt).await.is_ok());
    let jwt = sign(
        json!({"alg": "RS256", "kid": "new"}),
        claims(),
        &new.encoding,
        Algorithm::RS256,
    );
    assert!(reason(validate(&host, &jwt).await).contains("kid \"new\""));
    let no_kid = sign(
        json!({"alg": "RS256"}),
        claims(),
        &old.encoding,
        Algorithm::RS256,
    );
    assert!(validate(&host, &no_kid).await.is_ok());
    assert_eq!(
        host.jwks_calls(),
        vec![
            (URI.to_string(), Some("old".to_string())),
            (URI.to_string(), Some("new".to_string())),
            (URI.to_string(), None)
        ]
    );
}

#[tokio::test]
async fn static_and_fetched_keys_are_both_used() {
    let (s, f) = (ec("static", false), ed25519("fetched"));
    let host = host(vec![s.jwk.clone()], Some(vec![f.jwk.clone()]));
    let by_static = sign(
        json!({"alg": "ES256", "kid": "static"}),
        claims(),
        &s.encoding,
        Algorithm::ES256,
    );
    let by_fetched = sign(
        json!({"alg": "EdDSA", "kid": "fetched"}),
        claims(),
        &f.encoding,
        Algorithm::EdDSA,
    );
    assert!(validate(&host, &by_static).await.is_ok());
    assert!(validate(&host, &by_fetched).await.is_ok());
}

#[tokio::test]
async fn forbidden_algorithms_are_refused_before_any_key_is_looked_at() {
    let key = rsa("r");
    let host = host(vec![key.jwk.clone()], None);
    let unsigned = |alg: &str| {
        format!(
            "{}.{}.",
            b64(json!({"alg": alg, "kid": "r"}).to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        )
    };
    for alg in ["none", "None", "NONE", "nOnE"] {
        assert!(
            reason(validate(&host, &unsigned(alg)).await).contains("none"),
            "{alg}"
        );
        let signed_anyway = format!("{}c2ln", unsigned(alg));
        assert!(reason(validate(&host, &signed_anyway).await).contains("none"));
    }
    // HS256 with the RSA public key as the secret: the classic key confusion.
    let secret = EncodingKey::from_secret(RSA_JWK.as_bytes());
    for (name, alg) in [("HS256", Algorithm::HS256), ("HS512", Algorithm::HS512)] {
        let jwt = sign(json!({"alg": name, "kid": "r"}), claims(), &secret, alg);
        assert!(
            reason(validate(&host, &jwt).await).contains("HMAC"),
            "{name}"
        );
    }
    for alg in ["RS1", "ES512", "rs256", "ES256K", ""] {
        let jwt = format!("{}c2ln", unsigned(alg));
        assert!(validate(&host, &jwt).await.is_err(), "{alg}");
    }
    assert!(host.jwks_calls().is_empty());
}

#[tokio::test]
async fn the_algorithm_must_fit_the_key() {
    let (r, e) = (rsa("r"), ec("e", false));
    let mut pinned = rsa_b("pinned");
    pinned.jwk["alg"] = "RS256".into();
    let host = host(vec![r.jwk.clone(), e.jwk.clone(), pinned.jwk.clone()], None);
    // An EC key named for an RSA signature, and the other way round.
    let rs_on_ec = sign(
        json!({"alg": "RS256", "kid": "e"}),
        claims(),
        &r.encoding,
        Algorithm::RS256,
    );
    assert!(reason(validate(&host, &rs_on_ec).await).contains("no RS256 key"));
    let es_on_rsa = sign(
        json!({"alg": "ES256", "kid": "r"}),
        claims(),
        &e.encoding,
        Algorithm::ES256,
    );
    assert!(reason(validate(&host, &es_on_rsa).await).contains("no ES256 key"));
    // A key registered for RS256 is not used for PS256, even though both are RSA.
    let ps = sign(
        json!({"alg": "PS256", "kid": "pinned"}),
        claims(),
        &pinned.encoding,
        Algorithm::PS256,
    );
    assert!(validate(&host, &ps).await.is_err());
    let rs = sign(
        json!({"alg": "RS256", "kid": "pinned"}),
        claims(),
        &pinned.encoding,
        Algorithm::RS256,
    );
    assert!(validate(&host, &rs).await.is_ok());
    // P-384 keys only for ES384.
    let p384 = ec("p384", true);
    let host = self::host(vec![p384.jwk.clone()], None);
    let jwt = sign(
        json!({"alg": "ES256", "kid": "p384"}),
        claims(),
        &e.encoding,
        Algorithm::ES256,
    );
    assert!(validate(&host, &jwt).await.is_err());
}

#[tokio::test]
async fn keys_named_by_the_token_itself_are_never_used() {
    let (registered, attacker) = (rsa("r"), rsa_b("evil"));
    let host = host(vec![registered.jwk.clone()], None);
    let headers = [
        json!({"alg": "RS256", "jwk": attacker.jwk}),
        json!({"alg": "RS256", "jku": "https://attacker.example/jwks"}),
        json!({"alg": "RS256", "x5u": "https://attacker.example/cert.pem"}),
        json!({"alg": "RS256", "x5c": ["MIIBattacker"]}),
        json!({"alg": "RS256", "kid": "r", "jwk": attacker.jwk}),
    ];
    for header in headers {
        let jwt = sign(
            header.clone(),
            claims(),
            &attacker.encoding,
            Algorithm::RS256,
        );
        assert!(
            reason(validate(&host, &jwt).await).contains("does not verify"),
            "{header}"
        );
    }
    assert!(host.jwks_calls().is_empty());
}

#[tokio::test]
async fn malformed_and_unsupported_shapes_are_refused() {
    let key = rsa("r");
    let host = host(vec![key.jwk.clone()], None);
    let good = sign(
        json!({"alg": "RS256", "kid": "r"}),
        claims(),
        &key.encoding,
        Algorithm::RS256,
    );
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let crit = sign(
        json!({"alg": "RS256", "kid": "r", "crit": ["exp"], "exp": 1}),
        claims(),
        &key.encoding,
        Algorithm::RS256,
    );
    let nested = sign(
        json!({"alg": "RS256", "kid": "r", "cty": "JWT"}),
        claims(),
        &key.encoding,
        Algorithm::RS256,
    );
    let numeric_kid = sign(
        json!({"alg": "RS256", "kid": 7}),
        claims(),
        &key.encoding,
        Algorithm::RS256,
    );
    let array_claims = sign(
        json!({"alg": "RS256", "kid": "r"}),
        json!(["a"]),
        &key.encoding,
        Algorithm::RS256,
    );
    let huge = sign(
        json!({"alg": "RS256", "kid": "r"}),
        json!({"sub": "x".repeat(MAX_JWT_BYTES)}),
        &key.encoding,
        Algorithm::RS256,
    );
    let tampered = format!(
        "{h}.{}.{s}",
        b64(json!({"sub": "mallory"}).to_string().as_bytes())
    );
    let cases: Vec<(String, &str)> = vec![
        (crit, "crit"),
        (nested, "nested"),
        (numeric_kid, "kid must be a string"),
        (array_claims, "claims set is not a JSON object"),
        (huge, "longer than"),
        (tampered, "does not verify"),
        (format!("{h}.{p}.{s}.x.y"), "JWE"),
        (format!("{h}.{p}"), "compact"),
        (format!("{h}.{p}.{s}.x"), "compact"),
        (format!("{h}.{p}."), "not signed"),
        (format!("{h}.{p}.!!!"), "does not verify"),
        (format!("eyJ.{p}.{s}"), "JOSE header"),
        (format!("{}.{p}.{s}", b64(b"[1]")), "JOSE header"),
        (format!("{}.{p}.{s}", b64(&[0xff, 0xfe])), "JOSE header"),
        (format!("{h}.{}.{s}", b64(b"\xff")), "claims"),
        (String::new(), "compact"),
    ];
    for (jwt, expected) in cases {
        let r = reason(validate(&host, &jwt).await);
        assert!(r.contains(expected), "{expected}: {r}");
        assert!(
            !r.contains(&jwt) || jwt.is_empty(),
            "the JWT is echoed: {r}"
        );
    }
}

#[tokio::test]
async fn a_header_or_claims_naming_a_member_twice_is_refused_though_well_signed() {
    let key = rsa("r");
    let host = host(vec![key.jwk.clone()], None);
    let signed = |header: &str, claims: &str| {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, Algorithm::RS256).unwrap();
        format!("{input}.{signature}")
    };
    let header = r#"{"alg":"RS256","kid":"r"}"#;
    let claims = r#"{"iss":"https://idp.example","sub":"alice","exp":2000000000}"#;
    assert!(validate(&host, &signed(header, claims)).await.is_ok());
    for (header, claims, expected) in [
        (
            r#"{"alg":"none","kid":"r","alg":"RS256"}"#,
            claims,
            "JOSE header names a member twice",
        ),
        (
            r#"{"alg":"RS256","kid":"x","kid":"r"}"#,
            claims,
            "JOSE header names a member twice",
        ),
        (
            header,
            r#"{"iss":"https://idp.example","sub":"mallory","sub":"alice","exp":2000000000}"#,
            "claims set names a member twice",
        ),
    ] {
        let r = reason(validate(&host, &signed(header, claims)).await);
        assert!(r.contains(expected), "{header} {claims}: {r}");
    }
}

#[tokio::test]
async fn invalid_curve_signatures_are_rejected() {
    let key = ec("e", false);
    let host = host(vec![key.jwk.clone()], None);
    let header = b64(json!({"alg": "ES256", "kid": "e"}).to_string().as_bytes());
    let payload = b64(claims().to_string().as_bytes());
    for signature in [vec![0u8; 64], vec![0xff; 64], vec![0u8; 63], vec![]] {
        let jwt = format!("{header}.{payload}.{}", b64(&signature));
        assert!(validate(&host, &jwt).await.is_err());
    }
}

#[tokio::test]
async fn an_unknown_source_is_the_hosts_rejection() {
    let host = TestHost::new(0);
    let key = rsa("r");
    let jwt = sign(
        json!({"alg": "RS256", "kid": "r"}),
        claims(),
        &key.encoding,
        Algorithm::RS256,
    );
    assert!(reason(validate(&host, &jwt).await).contains("unknown trust source"));
}

#[test]
fn the_plugin_registers_its_name_and_wso2_alias() {
    let plugin = plugin();
    let info = &plugin.registrations()[0].info;
    assert_eq!(info.name, "jwks-validator");
    assert!(info.answers_to("org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator"));
}

#[tokio::test]
async fn a_key_whose_point_is_off_the_curve_verifies_nothing() {
    let key = ec("e", false);
    let jwt = sign(
        json!({"alg": "ES256", "kid": "e"}),
        claims(),
        &key.encoding,
        Algorithm::ES256,
    );
    // The same x with y changed in its last byte: (x, y') is not on P-256.
    let mut jwk = key.jwk.clone();
    let mut y = URL_SAFE_NO_PAD
        .decode(jwk["y"].as_str().expect("y"))
        .expect("base64url y");
    y[31] ^= 1;
    jwk["y"] = json!(URL_SAFE_NO_PAD.encode(&y));
    assert!(validate(&host(vec![key.jwk.clone()], None), &jwt)
        .await
        .is_ok());
    assert!(validate(&host(vec![jwk], None), &jwt).await.is_err());
}

#[tokio::test]
async fn keys_are_parsed_once_and_a_key_rotated_in_under_the_same_kid_is_its_own_entry() {
    let (a, b) = (rsa("k"), rsa_b("k"));
    let host = host(vec![], Some(vec![a.jwk.clone()]));
    let validator = JwksValidator::new(host.clone());
    let by = |key: &TestKey| {
        sign(
            json!({"alg": "RS256", "kid": "k"}),
            claims(),
            &key.encoding,
            Algorithm::RS256,
        )
    };
    let (by_a, by_b) = (by(&a), by(&b));
    for _ in 0..3 {
        assert!(validator.validate(&by_a, &idp()).await.is_ok());
    }
    assert_eq!(validator.key_cache().len(), 1);
    // Signed by b under a's kid: a's parsed key is tried, and fails.
    assert!(reason(validator.validate(&by_b, &idp()).await).contains("does not verify"));
    // A signature changed in one byte fails with the parsed key too.
    let mut tampered = by_a.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert!(reason(validator.validate(&tampered, &idp()).await).contains("does not verify"));
    // The IdP rotates unannounced and serves b under the same kid: b is parsed and used, and
    // a, which the host no longer hands over, verifies nothing though it is still cached.
    host.set_jwks(
        URI,
        Jwks {
            keys: vec![b.jwk.clone()],
        },
    );
    assert!(validator.validate(&by_b, &idp()).await.is_ok());
    assert!(reason(validator.validate(&by_a, &idp()).await).contains("does not verify"));
    assert_eq!(validator.key_cache().len(), 2);
}

#[test]
fn one_key_is_parsed_per_algorithm_and_unreadable_keys_are_remembered_as_such() {
    let cache = KeyCache::default();
    let jwk = rsa("r").jwk;
    let [rs256, ps256] =
        ["RS256", "PS256"].map(|name| keys::Algorithm::named(name).expect("accepted"));
    assert!(cache.get(&jwk, rs256).is_some());
    assert!(cache.get(&jwk, ps256).is_some());
    assert!(cache.get(&jwk, rs256).is_some());
    assert_eq!(cache.len(), 2);
    // An RSA key is no key for EdDSA, and is not kept for it.
    let eddsa = keys::Algorithm::named("EdDSA").expect("accepted");
    assert!(cache.get(&jwk, eddsa).is_none());
    assert_eq!(cache.len(), 2);
    // A modulus of 1,024 bits parses, but no accepted algorithm verifies with it (2,048 at
    // least); a modulus that is not base64url is remembered as unreadable.
    let mut short = jwk.clone();
    let n = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("n"))
        .expect("n");
    short["n"] = json!(b64(&n[..128]));
    let mut garbage = jwk.clone();
    garbage["n"] = json!("not base64url!");
    assert!(cache.get(&garbage, rs256).is_none());
    assert!(cache.get(&garbage, rs256).is_none());
    assert_eq!(cache.len(), 3);
    let jwt = sign(
        json!({"alg": "RS256"}),
        claims(),
        &rsa("r").encoding,
        Algorithm::RS256,
    );
    let jws = Jws::parse(&jwt).expect("parses");
    assert!(jws.verifies_with(&jwk, &cache));
    assert!(!jws.verifies_with(&short, &cache));
    assert!(!jws.verifies_with(&garbage, &cache));
}

#[test]
fn the_cache_keeps_at_most_max_cached_keys() {
    let cache = KeyCache::default();
    let eddsa = keys::Algorithm::named("EdDSA").expect("accepted");
    let keys: Vec<Value> = (0..MAX_CACHED_KEYS + 10)
        .map(|i| ed25519(&i.to_string()).jwk)
        .collect();
    for key in &keys {
        assert!(cache.get(key, eddsa).is_some());
    }
    assert_eq!(cache.len(), MAX_CACHED_KEYS);
    // The oldest went first; each key still parses when it is asked for again.
    assert!(cache.get(&keys[0], eddsa).is_some());
    assert_eq!(cache.len(), MAX_CACHED_KEYS);
}
