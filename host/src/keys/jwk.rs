//! The one key policy (CONTRACT §6), applied wherever a key enters: a fetched JWKS, a client's
//! inline `jwks`, an identity provider's certificate. Each becomes the same thing — a public
//! signing JWK holding only the members a validator needs — or is refused with the reason.
//!
//! Accepted: RSA of at least [`MIN_RSA_BITS`] bits (RS*/PS*), EC P-256 (ES256) and P-384
//! (ES384), OKP Ed25519 (EdDSA); an `alg`, when present, must fit the key; `use`, when present,
//! must be `sig`; `key_ops`, when present, must include `verify`. Private members are refused:
//! a set that publishes them is misconfigured, and we do not copy secrets around.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{Map, Value};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::public_key::PublicKey;

/// RSA keys shorter than this are never used (CONTRACT §6).
pub const MIN_RSA_BITS: usize = 2048;

/// JWK members that only a private key has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

pub(crate) const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
pub(crate) const PEM_END: &str = "-----END CERTIFICATE-----";

/// The bit length of a big-endian unsigned integer (an RSA modulus), leading zeros ignored.
pub fn modulus_bits(bytes: &[u8]) -> usize {
    match bytes.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => (bytes.len() - i) * 8 - bytes[i].leading_zeros() as usize,
    }
}

/// `key` as a public signing JWK with only `kty`, `kid`, `alg`, `use`, `crv`, `n`, `e`, `x`,
/// `y`; or why it cannot be used.
pub fn signing_key(key: &Value) -> Result<Value, String> {
    let key = key.as_object().ok_or("must be a JSON object")?;
    let kty = key
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("kty is required")?;
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| key.contains_key(**m)) {
        return Err(format!(
            "holds private key material (\"{member}\"): public keys only"
        ));
    }
    match key.get("use") {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(other) => return Err(format!("use {other} is not \"sig\"")),
    }
    match key.get("key_ops") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ops)) if ops.iter().any(|o| o == "verify") => {}
        Some(_) => return Err("key_ops does not include \"verify\"".into()),
    }
    let member = |name: &str| -> Result<Vec<u8>, String> {
        let text = key
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("\"{name}\" is required for kty {kty}"))?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("\"{name}\" is not base64url"))
    };
    let sized = |name: &str, len: usize| -> Result<(), String> {
        if member(name)?.len() == len {
            Ok(())
        } else {
            Err(format!("\"{name}\" must be {len} bytes"))
        }
    };
    let (algs, members): (&[&str], &[&str]) = match kty {
        "RSA" => {
            let bits = modulus_bits(&member("n")?);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA key of {bits} bits: at least {MIN_RSA_BITS} are required"
                ));
            }
            if member("e")?.iter().all(|b| *b == 0) {
                return Err("\"e\" must not be zero".into());
            }
            (
                &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
                &["n", "e"],
            )
        }
        "EC" => {
            let (algs, len): (&[&str], usize) = match key.get("crv").and_then(Value::as_str) {
                Some("P-256") => (&["ES256"], 32),
                Some("P-384") => (&["ES384"], 48),
                other => {
                    return Err(format!(
                        "unsupported EC curve {other:?} (P-256 or P-384 only)"
                    ))
                }
            };
            sized("x", len)?;
            sized("y", len)?;
            (algs, &["crv", "x", "y"])
        }
        "OKP" => {
            if key.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                return Err("unsupported OKP curve (Ed25519 only)".into());
            }
            sized("x", 32)?;
            (&["EdDSA"], &["crv", "x"])
        }
        other => {
            return Err(format!(
                "unsupported kty {other:?}: only asymmetric signing keys (RSA, EC, OKP)"
            ))
        }
    };
    match key.get("alg") {
        None | Some(Value::Null) => {}
        Some(Value::String(alg)) if algs.contains(&alg.as_str()) => {}
        Some(alg) => return Err(format!("alg {alg} does not fit a {kty} signing key")),
    }
    if !matches!(
        key.get("kid"),
        None | Some(Value::Null) | Some(Value::String(_))
    ) {
        return Err("kid must be a string".into());
    }
    let mut public = Map::new();
    for name in ["kty", "kid", "alg", "use"].iter().chain(members) {
        if let Some(value) = key.get(*name).filter(|v| !v.is_null()) {
            public.insert((*name).to_owned(), value.clone());
        }
    }
    Ok(Value::Object(public))
}

/// The usable keys of a JWKS document, and a note per key that was left out. A document that
/// is not `{"keys": [...]}` is an error.
pub fn signing_keys(jwks: &Value) -> Result<(Vec<Value>, Vec<String>), String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWKS must be an object with a \"keys\" array")?;
    let mut usable = Vec::with_capacity(keys.len());
    let mut ignored = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match signing_key(key) {
            Ok(key) => usable.push(key),
            Err(e) => ignored.push(format!("keys[{i}]: {e}")),
        }
    }
    Ok((usable, ignored))
}

/// Inline `jwks` of a client registration: every key must be usable, and there must be one.
pub fn check_jwks(jwks: &Value) -> Result<(), String> {
    let (usable, ignored) = signing_keys(jwks).map_err(|e| e.replace("a JWKS", "jwks"))?;
    if let Some(first) = ignored.first() {
        return Err(format!("jwks.{first}"));
    }
    if usable.is_empty() {
        return Err("jwks.keys must not be empty".into());
    }
    Ok(())
}

/// The key of an X.509 certificate, as a public signing JWK, and when the certificate expires.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateKey {
    pub jwk: Value,
    /// `notAfter`, unix seconds.
    pub not_after: i64,
    /// `notBefore`, unix seconds.
    pub not_before: i64,
}

/// One certificate — PEM, base64 of PEM, or base64 of DER — as normalised PEM and its key.
pub fn certificate(text: &str) -> Result<(String, CertificateKey), String> {
    let text = text.trim();
    let der = if text.starts_with("-----BEGIN") {
        pem_to_der(text)?
    } else {
        let compact: String = text.split_whitespace().collect();
        let bytes = STANDARD
            .decode(compact)
            .map_err(|_| "neither PEM nor base64 of a certificate")?;
        match std::str::from_utf8(&bytes) {
            Ok(pem) if pem.trim_start().starts_with("-----BEGIN") => pem_to_der(pem.trim())?,
            _ => bytes,
        }
    };
    let (rest, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("not a valid X.509 certificate ({e})"))?;
    if !rest.is_empty() {
        return Err("trailing data after the certificate".into());
    }
    let spki = cert.public_key();
    let algorithm = &spki.algorithm.algorithm;
    let b64 = |bytes: &[u8]| Value::from(URL_SAFE_NO_PAD.encode(bytes));
    let jwk = if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err("malformed RSA public key".into());
        };
        let strip = |b: &[u8]| b[b.iter().position(|x| *x != 0).unwrap_or(b.len())..].to_vec();
        serde_json::json!({"kty": "RSA", "n": b64(&strip(rsa.modulus)), "e": b64(&strip(rsa.exponent))})
    } else if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let (crv, len) = match curve {
            Some(c) if c == OID_EC_P256 => ("P-256", 32),
            Some(c) if c == OID_NIST_EC_P384 => ("P-384", 48),
            _ => return Err("unsupported EC curve (P-256 or P-384 only)".into()),
        };
        let point = &spki.subject_public_key.data;
        if point.len() != 1 + 2 * len || point[0] != 4 {
            return Err("malformed EC public key (an uncompressed point is required)".into());
        }
        serde_json::json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=len]), "y": b64(&point[1 + len..])})
    } else if *algorithm == OID_SIG_ED25519 {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&spki.subject_public_key.data)})
    } else {
        return Err(format!(
            "unsupported key type (OID {algorithm}): RSA, EC P-256/P-384 or Ed25519 only"
        ));
    };
    let jwk = signing_key(&jwk)?;
    let validity = cert.validity();
    Ok((
        to_pem(&der),
        CertificateKey {
            jwk,
            not_after: validity.not_after.timestamp(),
            not_before: validity.not_before.timestamp(),
        },
    ))
}

/// The DER inside the one `CERTIFICATE` block of `pem` (line breaks anywhere, or none).
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    if pem.matches("-----BEGIN").count() != 1 {
        return Err("each entry must hold exactly one certificate".into());
    }
    let body = pem
        .strip_prefix(PEM_BEGIN)
        .ok_or("the PEM block is not a CERTIFICATE")?
        .strip_suffix(PEM_END)
        .ok_or("the PEM block has no matching END CERTIFICATE line")?;
    let compact: String = body.split_whitespace().collect();
    STANDARD
        .decode(compact)
        .map_err(|_| "the PEM block is not valid base64".into())
}

fn to_pem(der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let mut pem = String::with_capacity(base64.len() + base64.len() / 64 + 64);
    pem.push_str(PEM_BEGIN);
    pem.push('\n');
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    pem
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::{select, subsequence};

    const KEPT: [&str; 9] = ["kty", "kid", "alg", "use", "crv", "n", "e", "x", "y"];

    fn b64(len: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<u8>(), len).prop_map(|b| URL_SAFE_NO_PAD.encode(b))
    }

    /// Any JSON value, nested a little.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "(?s).{0,16}".prop_map(Value::from),
            select(&["RSA", "EC", "OKP", "oct", "P-256", "P-384", "Ed25519", "sig", "verify"])
                .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(
                    select(&[
                        "kty", "crv", "n", "e", "x", "y", "d", "alg", "use", "key_ops", "kid",
                        "keys"
                    ])
                    .prop_map(str::to_owned),
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A usable public key of each accepted type, with optional `kid`, `alg`, `use`.
    fn public_key() -> impl Strategy<Value = Value> {
        let rsa = b64(256).prop_map(|mut n| {
            n.replace_range(..1, "y"); // top bits set: 2048 bits
            serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256"})
        });
        let p256 = (b64(32), b64(32))
            .prop_map(|(x, y)| serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}));
        let p384 = (b64(48), b64(48))
            .prop_map(|(x, y)| serde_json::json!({"kty": "EC", "crv": "P-384", "x": x, "y": y}));
        let ed = b64(32).prop_map(|x| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}));
        (
            prop_oneof![rsa, p256, p384, ed],
            any::<Option<String>>(),
            any::<bool>(),
        )
            .prop_map(|(mut key, kid, sig)| {
                if let Some(kid) = kid {
                    key["kid"] = kid.into();
                }
                if sig {
                    key["use"] = "sig".into();
                }
                key
            })
    }

    fn assert_public(key: &Value) -> Result<(), TestCaseError> {
        let members = key.as_object().expect("an object");
        prop_assert!(members.keys().all(|m| KEPT.contains(&m.as_str())), "{key}");
        prop_assert!(PRIVATE_MEMBERS.iter().all(|m| !members.contains_key(*m)));
        Ok(())
    }

    proptest! {
        #[test]
        fn policy_never_panics_and_keeps_only_public_members(document in json()) {
            if let Ok((usable, ignored)) = signing_keys(&document) {
                prop_assert_eq!(usable.len() + ignored.len(), document["keys"].as_array().unwrap().len());
                for key in &usable {
                    assert_public(key)?;
                }
            }
            let _ = check_jwks(&document);
            if let Ok(key) = signing_key(&document) {
                assert_public(&key)?;
            }
        }

        #[test]
        fn private_members_are_never_kept(
            key in public_key(),
            private in subsequence(PRIVATE_MEMBERS.to_vec(), 0..=PRIVATE_MEMBERS.len()),
            extra in proptest::collection::btree_map("[a-z]{1,4}", json(), 0..4),
        ) {
            let mut published = key.clone();
            for (name, value) in extra {
                if !KEPT.contains(&name.as_str()) && !PRIVATE_MEMBERS.contains(&name.as_str()) {
                    published[name] = value;
                }
            }
            for member in &private {
                published[*member] = "AQAB".into();
            }
            let document = serde_json::json!({"keys": [published]});
            let (usable, ignored) = signing_keys(&document).unwrap();
            if private.is_empty() {
                // Unknown members are dropped; the public ones are kept as they were.
                prop_assert_eq!(usable, vec![key]);
            } else {
                prop_assert!(usable.is_empty());
                prop_assert!(ignored[0].contains("private key material"), "{}", ignored[0]);
            }
        }

        #[test]
        fn certificate_text_never_panics(text in "(?s).{0,512}", der in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = certificate(&text);
            let _ = certificate(&STANDARD.encode(&der));
            let _ = certificate(&format!("{PEM_BEGIN}\n{}\n{PEM_END}", STANDARD.encode(&der)));
        }
    }
}
