//! The one key policy (host/src/keys/jwk.rs) as a fetched JWKS meets it: the document parsed
//! from bytes, then `signing_keys` (fetched sets), `check_jwks` (inline `jwks` of a client) and
//! `signing_key` per key; input that is not JSON goes to `certificate` (an identity provider's
//! PEM / base64 certificate).
//!
//! Invariants: an accepted key keeps no private member and nothing beyond the public members
//! a validator needs; accepting is idempotent. Every accepted key is then handed to the bundled
//! validator (`Jws::verifies_with`) for a JWS of each algorithm, as a fetched key would be: it
//! may not verify the (bogus) signature, and may not panic.
//!
//! Input: a JWKS document (JSON) or certificate text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_host::keys::jwk;
use tollgate_jwks_validator::{Jws, KeyCache};

const KEPT: [&str; 9] = ["kty", "kid", "alg", "use", "crv", "n", "e", "x", "y"];

/// `{"alg":ALG}.{}.` and a signature of 64 zero bytes, for each accepted algorithm.
const JWS: [&str; 9] = [
    "eyJhbGciOiJSUzI1NiJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJSUzM4NCJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJSUzUxMiJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJQUzI1NiJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJQUzM4NCJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJQUzUxMiJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJFUzI1NiJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJFUzM4NCJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJFZERTQSJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
];

fn check_accepted(key: &Value) {
    let members = key.as_object().expect("an accepted key is an object");
    assert!(members.keys().all(|m| KEPT.contains(&m.as_str())), "{key}");
    assert_eq!(jwk::signing_key(key).as_ref(), Ok(key), "not idempotent");
    let cache = KeyCache::default();
    for jws in JWS {
        let jws = Jws::parse(jws).expect("a well-formed JWS");
        assert!(
            !jws.verifies_with(key, &cache),
            "{key} verified a bogus signature"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(document) = serde_json::from_slice::<Value>(data) else {
        let _ = jwk::certificate(&String::from_utf8_lossy(data));
        return;
    };
    if let Ok((usable, ignored)) = jwk::signing_keys(&document) {
        let total = document["keys"].as_array().map_or(0, Vec::len);
        assert_eq!(usable.len() + ignored.len(), total);
        usable.iter().for_each(check_accepted);
        let checked = jwk::check_jwks(&document);
        assert_eq!(checked.is_ok(), ignored.is_empty() && !usable.is_empty());
    } else {
        assert!(jwk::check_jwks(&document).is_err());
    }
    if let Ok(key) = jwk::signing_key(&document) {
        check_accepted(&key);
    }
});
