//! Validation of a JWT whose keys are cached, against the bare signature check it contains.
//!
//! For RS256, ES256 and EdDSA: `bare` is the signature check with the key parsed beforehand, as
//! the validator's key cache holds it — the floor; `ring_per_call` is the check as it was before
//! that cache (jsonwebtoken over ring, which re-reads the key on every call); `validator` is the
//! whole component in-process (parse, header rules, trust material and cached JWKS from the host,
//! key selection, key construction, verification); `through_abi` is the same component as the host
//! calls a loaded plugin (FFI vtables and JSON both ways, for the call and for the host services
//! it uses).
//!
//! cargo bench -p tollgate-jwks-validator --bench validate

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::sync::Arc;
use tollgate_core::sdk::TestHost;
use tollgate_core::{
    abi::through_abi, Component, ComponentContext, Jwks, JwtValidator, TrustMaterial, TrustSource,
    TrustedParty,
};
use tollgate_jwks_validator::{plugin, JwksValidator, KeyCache};

const RSA_PEM: &str = include_str!("../../../tests/fixtures/keys/rsa-2048.pem");
const RSA_JWK: &str = include_str!("../../../tests/fixtures/keys/rsa-2048.jwk.json");
const URI: &str = "https://idp.example/jwks";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// (alg, signing key, public JWK with kid "k").
fn key(alg: Algorithm) -> (EncodingKey, Value) {
    let rng = SystemRandom::new();
    match alg {
        Algorithm::RS256 => {
            let mut jwk: Value = serde_json::from_str(RSA_JWK).unwrap();
            jwk["kid"] = "k".into();
            (EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(), jwk)
        }
        Algorithm::ES256 => {
            let a = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(a, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(a, pkcs8.as_ref(), &rng).unwrap();
            let p = pair.public_key().as_ref();
            let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k", "x": b64(&p[1..33]), "y": b64(&p[33..])});
            (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
        }
        _ => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": b64(pair.public_key().as_ref())});
            (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
        }
    }
}

fn source() -> TrustSource {
    TrustSource::IdentityProvider {
        tenant: "carbon.super".into(),
        name: "https://idp.example".into(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (name, alg) in [
        ("RS256", Algorithm::RS256),
        ("ES256", Algorithm::ES256),
        ("EdDSA", Algorithm::EdDSA),
    ] {
        let (encoding, jwk) = key(alg);
        let header = json!({"alg": name, "kid": "k", "typ": "JWT"});
        let claims = json!({"iss": "https://idp.example", "sub": "alice", "aud": "https://localhost:9443/oauth2/token",
                            "exp": 2_000_000_000, "iat": 1_700_000_000, "jti": "0f8e5a2c-5b7e-4d1e-9c1e-2b9a7d3f4e61"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &encoding, alg).unwrap();
        let jwt = format!("{input}.{signature}");

        let decoding = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_components(
                jwk["n"].as_str().unwrap(),
                jwk["e"].as_str().unwrap(),
            )
            .unwrap(),
            Algorithm::ES256 => DecodingKey::from_ec_components(
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap(),
            )
            .unwrap(),
            _ => DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap(),
        };

        let host = TestHost::new(1_700_000_000);
        host.add_trust(
            source(),
            TrustMaterial {
                party: TrustedParty::IdentityProvider {
                    id: "1".into(),
                    name: "https://idp.example".into(),
                    alias: "https://localhost:9443/oauth2/token".into(),
                },
                jwks_uri: Some(URI.into()),
                keys: vec![],
            },
        );
        // A set of three keys, as IdPs publish around a rotation.
        let (_, other_a) = key(Algorithm::RS256);
        let (_, other_b) = key(Algorithm::ES256);
        let mut other_a = other_a;
        other_a["kid"] = "previous".into();
        let mut other_b = other_b;
        other_b["kid"] = "next".into();
        host.set_jwks(
            URI,
            Jwks {
                keys: vec![other_a, jwk.clone(), other_b],
            },
        );
        let in_process = JwksValidator::new(host.clone());
        let registration = through_abi(plugin()).unwrap().remove(0);
        let Ok(Component::JwtValidator(loaded)) = (registration.construct)(ComponentContext {
            properties: Default::default(),
            settings: Default::default(),
            host: host.clone(),
        }) else {
            panic!("the plugin's component is a JWT validator")
        };
        let loaded: Arc<dyn JwtValidator> = loaded;
        assert!(rt.block_on(in_process.validate(&jwt, &source())).is_ok());
        assert!(rt.block_on(loaded.validate(&jwt, &source())).is_ok());

        let mut group = c.benchmark_group(format!("validate_{name}"));
        let parsed = KeyCache::default()
            .get(
                &jwk,
                tollgate_jwks_validator::Algorithm::named(name).unwrap(),
            )
            .unwrap();
        let signature_bytes = URL_SAFE_NO_PAD.decode(&signature).unwrap();
        group.bench_function("bare", |b| {
            b.iter(|| {
                parsed
                    .verify_sig(input.as_bytes(), &signature_bytes)
                    .unwrap()
            })
        });
        group.bench_function("ring_per_call", |b| {
            b.iter(|| {
                assert!(
                    jsonwebtoken::crypto::verify(&signature, input.as_bytes(), &decoding, alg)
                        .unwrap()
                )
            })
        });
        group.bench_function("validator", |b| {
            b.iter(|| rt.block_on(in_process.validate(&jwt, &source())).unwrap())
        });
        group.bench_function("through_abi", |b| {
            b.iter(|| rt.block_on(loaded.validate(&jwt, &source())).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
