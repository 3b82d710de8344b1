//! Verification keys, parsed once and kept.
//!
//! Why: making a verification key out of a JWK is not free, and the keys of an identity provider
//! or a client change rarely while their JWTs arrive thousands a second. For RSA, ring (through
//! jsonwebtoken) read the modulus and computed its Montgomery constants on every verification:
//! a third of an RS256 check. aws-lc-rs keeps a parsed key ([`ParsedPublicKey`]) whose
//! constants are computed once, so a cached key costs only the signature arithmetic.
//!
//! What the cache cannot do is widen trust. It is keyed by the algorithm and the key material
//! itself (the modulus and exponent, or the curve point), never by `kid`: it only answers "this
//! material, already parsed", for keys the host handed over for this very JWT. A key rotated in
//! under the same `kid` is another entry, and a key the registry dropped is simply never asked
//! for again; it leaves the cache as the least recently used once [`MAX_CACHED_KEYS`] others
//! were.

use aws_lc_rs::signature::{
    self, EcdsaVerificationAlgorithm, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cached::{Cached, SizedCache};
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};

/// At most this many parsed keys are kept (a parsed RSA-4096 key is about 2 KiB).
pub const MAX_CACHED_KEYS: usize = 1024;

/// How an accepted algorithm verifies, and which key type serves it.
#[derive(Clone, Copy)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 or RSASSA-PSS with a key of 2048 to 8192 bits.
    Rsa(&'static str, &'static RsaParameters),
    /// ECDSA with a fixed-length `r || s` signature (RFC 7518 §3.4), on the named curve.
    Ecdsa(
        &'static str,
        &'static str,
        &'static EcdsaVerificationAlgorithm,
    ),
    /// Ed25519.
    EdDsa,
}

/// The accepted algorithms.
pub const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::Rsa("RS256", &signature::RSA_PKCS1_2048_8192_SHA256),
    Algorithm::Rsa("RS384", &signature::RSA_PKCS1_2048_8192_SHA384),
    Algorithm::Rsa("RS512", &signature::RSA_PKCS1_2048_8192_SHA512),
    Algorithm::Rsa("PS256", &signature::RSA_PSS_2048_8192_SHA256),
    Algorithm::Rsa("PS384", &signature::RSA_PSS_2048_8192_SHA384),
    Algorithm::Rsa("PS512", &signature::RSA_PSS_2048_8192_SHA512),
    Algorithm::Ecdsa("ES256", "P-256", &signature::ECDSA_P256_SHA256_FIXED),
    Algorithm::Ecdsa("ES384", "P-384", &signature::ECDSA_P384_SHA384_FIXED),
    Algorithm::EdDsa,
];

impl std::fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Algorithm {
    /// The JOSE name (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rsa(name, _) | Algorithm::Ecdsa(name, _, _) => name,
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The accepted algorithm whose JOSE name is `name` (exactly, case and all).
    pub fn named(name: &str) -> Option<Algorithm> {
        ALGORITHMS.iter().find(|alg| alg.name() == name).copied()
    }

    /// Whether `key`'s type and curve serve this algorithm.
    fn fits_type(self, key: &Value) -> bool {
        match (self, member(key, "kty"), member(key, "crv")) {
            (Algorithm::Rsa(..), Some("RSA"), _) => true,
            (Algorithm::Ecdsa(_, curve, _), Some("EC"), Some(crv)) => crv == curve,
            (Algorithm::EdDsa, Some("OKP"), Some("Ed25519")) => true,
            _ => false,
        }
    }

    /// What identifies `key`'s material for this algorithm: the members a key is made of.
    fn material(self, key: &Value) -> Option<String> {
        let parts: &[&str] = match self {
            Algorithm::Rsa(..) => &["n", "e"],
            Algorithm::Ecdsa(..) => &["x", "y"],
            Algorithm::EdDsa => &["x"],
        };
        let mut material = String::new();
        for part in parts {
            material.push_str(member(key, part)?);
            material.push('.');
        }
        Some(material)
    }

    /// `key` parsed for this algorithm, or `None` when it is no valid key of its type.
    fn parse(self, key: &Value) -> Option<ParsedPublicKey> {
        let bytes = |name| URL_SAFE_NO_PAD.decode(member(key, name)?).ok();
        match self {
            Algorithm::Rsa(_, params) => RsaPublicKeyComponents {
                n: bytes("n")?,
                e: bytes("e")?,
            }
            .to_parsed_public_key(params)
            .ok(),
            Algorithm::Ecdsa(_, _, algorithm) => {
                // The uncompressed point (SEC 1 §2.3.3); aws-lc checks that it is on the curve.
                let mut point = vec![4];
                point.extend(bytes("x")?);
                point.extend(bytes("y")?);
                ParsedPublicKey::new(algorithm, point).ok()
            }
            Algorithm::EdDsa => ParsedPublicKey::new(&signature::ED25519, bytes("x")?).ok(),
        }
    }
}

/// `key`'s member `name`, if it is a string.
pub(crate) fn member<'k>(key: &'k Value, name: &str) -> Option<&'k str> {
    key.get(name).and_then(Value::as_str)
}

/// Whether `key` (a public JWK) may verify `alg`: its type and curve fit, and its `alg`, if it
/// names one, is that one.
pub fn fits(key: &Value, alg: Algorithm) -> bool {
    alg.fits_type(key) && key.get("alg").is_none_or(|a| a == alg.name())
}

/// A cache entry's key: the algorithm's name and the key's material.
type Entry = (&'static str, String);

/// Parsed keys by algorithm and material; a key that does not parse is remembered as `None`.
pub struct KeyCache {
    keys: Mutex<SizedCache<Entry, Option<Arc<ParsedPublicKey>>>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            keys: Mutex::new(SizedCache::with_size(MAX_CACHED_KEYS)),
        }
    }
}

impl KeyCache {
    /// `key` parsed for `alg`, from the cache or parsed now; `None` when it does not fit `alg`
    /// or is no valid key.
    pub fn get(&self, key: &Value, alg: Algorithm) -> Option<Arc<ParsedPublicKey>> {
        if !fits(key, alg) {
            return None;
        }
        let entry = (alg.name(), alg.material(key)?);
        // A panic while the lock was held cannot leave the map half-changed: use it anyway.
        let lock = || self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(parsed) = lock().cache_get(&entry) {
            return parsed.clone();
        }
        // Parsed outside the lock: two callers may both parse a new key, once each.
        let parsed = alg.parse(key).map(Arc::new);
        lock().cache_set(entry, parsed.clone());
        parsed
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cache_size()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
