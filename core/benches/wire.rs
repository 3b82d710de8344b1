//! What the values that cross the plugin ABI cost to encode and decode (JSON, `abi::wire`),
//! each the size it has in a JWT bearer grant: the trust source and the verified JWT with its
//! party, the trust material with an RSA key. (The token request does not cross as JSON since
//! ABI 2: it is shared.)
//!
//! cargo bench -p tollgate-core --bench wire

use criterion::{criterion_group, criterion_main, Criterion};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use std::hint::black_box;
use tollgate_core::*;

fn party() -> TrustedParty {
    TrustedParty::IdentityProvider {
        id: "J1b-W3a8Rj0WEzljJDKEEg".into(),
        name: "https://bench-idp.example".into(),
        alias: "https://localhost:9443/oauth2/token".into(),
    }
}

fn verified_jwt() -> VerifiedJwt {
    let map = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    VerifiedJwt {
        header: map(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})),
        claims: map(json!({
            "iss": "https://bench-idp.example", "sub": "alice",
            "aud": "https://localhost:9443/oauth2/token", "exp": 1_796_283_714,
            "iat": 1_796_282_814, "nbf": 1_796_282_814,
            "jti": "k_fZilAetAqbwDPWcmKbK4Lit5DyZZmZVu7c5g0pa38",
        })),
        party: party(),
    }
}

fn trust_material() -> TrustMaterial {
    TrustMaterial {
        party: party(),
        jwks_uri: Some("http://127.0.0.1:36219/jwks".into()),
        keys: vec![json!({
            "kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
            "e": "AQAB", "n": "n".repeat(342),
        })],
    }
}

fn round_trip<T: Serialize + DeserializeOwned>(c: &mut Criterion, name: &str, value: T) {
    let json = serde_json::to_string(&value).expect("encodes");
    c.bench_function(&format!("encode/{name}"), |b| {
        b.iter(|| serde_json::to_string(black_box(&value)))
    });
    c.bench_function(&format!("decode/{name}"), |b| {
        b.iter(|| serde_json::from_str::<T>(black_box(&json)).expect("decodes"))
    });
}

fn bench(c: &mut Criterion) {
    round_trip(
        c,
        "trust_source",
        TrustSource::IdentityProvider {
            tenant: "carbon.super".into(),
            name: "https://bench-idp.example".into(),
        },
    );
    round_trip(c, "verified_jwt", verified_jwt());
    round_trip(c, "trust_material", trust_material());
}

criterion_group!(benches, bench);
criterion_main!(benches);
