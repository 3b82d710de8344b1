//! `tollgate assertion`: signed JWTs for trying the JWT bearer grant and `private_key_jwt`
//! from a shell, and for load tests — each with its own random `jti`.
//!
//! The key is a PEM private key (PKCS#8, or PKCS#1 for RSA); `--alg` says how to sign with
//! it. Nothing is sent anywhere: the JWTs are printed, one per line.

use crate::secret::random_token;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

/// What to put in the assertions.
#[derive(Debug, Clone)]
pub struct Spec {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub iss: String,
    /// Defaults to `iss` (a client assertion has `iss` = `sub`).
    pub sub: Option<String>,
    pub aud: String,
    /// Seconds from now to `exp`.
    pub lifetime: i64,
}

/// The asymmetric algorithms Tollgate accepts, by their JOSE names.
const ALGORITHMS: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

/// Parses a JOSE algorithm name; only the asymmetric ones Tollgate accepts.
pub fn algorithm(name: &str) -> Result<Algorithm, String> {
    ALGORITHMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, alg)| *alg)
        .ok_or_else(|| {
            format!("unsupported alg {name:?} (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA)")
        })
}

/// The JOSE name of `alg` (`"none"` for the ones Tollgate does not accept).
pub fn name(alg: Algorithm) -> &'static str {
    ALGORITHMS
        .iter()
        .find(|(_, a)| *a == alg)
        .map_or("none", |(n, _)| n)
}

/// The signing key in the PEM file at `path`, for `alg`; errors name the file.
pub fn key(path: &std::path::Path, alg: Algorithm) -> Result<EncodingKey, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    };
    key.map_err(|e| format!("{}: not a private key for {alg:?}: {e}", path.display()))
}

/// `count` assertions issued at `now`, signed on all cores.
pub fn mint(spec: &Spec, key: &EncodingKey, now: i64, count: usize) -> Result<Vec<String>, String> {
    let mut header = Header::new(spec.alg);
    header.kid = spec.kid.clone();
    let claims = |jti: String| -> Map<String, Value> {
        let value = json!({
            "iss": spec.iss, "sub": spec.sub.as_deref().unwrap_or(&spec.iss), "aud": spec.aud,
            "iat": now, "nbf": now, "exp": now + spec.lifetime, "jti": jti,
        });
        match value {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        }
    };
    let sign = |n: usize| -> Result<Vec<String>, String> {
        (0..n)
            .map(|_| {
                jsonwebtoken::encode(&header, &claims(random_token()), key)
                    .map_err(|e| format!("signing failed: {e}"))
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if count < 64 || threads == 1 {
        return sign(count);
    }
    let share = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let n = share.min(count.saturating_sub(i * share));
                scope.spawn(move || sign(n))
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for worker in workers {
            all.extend(worker.join().map_err(|_| "a signing thread panicked")??);
        }
        Ok(all)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_carry_the_claims_and_unique_jtis() {
        let pem = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/keys/rsa-2048.pem");
        let spec = Spec {
            alg: algorithm("PS256").unwrap(),
            kid: Some("k1".into()),
            iss: "client-1".into(),
            sub: None,
            aud: "https://localhost:9443/oauth2/token".into(),
            lifetime: 300,
        };
        let jwts = mint(&spec, &key(&pem, spec.alg).unwrap(), 1_000, 100).unwrap();
        assert_eq!(jwts.len(), 100);
        let header = jsonwebtoken::decode_header(&jwts[0]).unwrap();
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::PS256, Some("k1"))
        );
        let claims = tollgate_core::peek_claims(&jwts[0]).unwrap();
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["exp"], 1_300);
        let jtis: std::collections::HashSet<_> = jwts
            .iter()
            .map(|j| tollgate_core::peek_claims(j).unwrap()["jti"].clone())
            .collect();
        assert_eq!(jtis.len(), 100);
        assert!(algorithm("HS256").is_err() && algorithm("none").is_err());
        assert!(key(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            Algorithm::RS256
        )
        .is_err());
        assert!(key(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            Algorithm::RS256
        )
        .is_err());
    }
}
