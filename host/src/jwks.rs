//! `tollgate jwks`: the public JWKS of a private key file, printed or served over loopback HTTP.
//!
//! It is the other half of `tollgate assertion`: what an identity provider or a
//! `private_key_jwt` client would publish for the key that signs its assertions. Printed, it is a
//! client's inline `jwks`; served (`--serve ADDR`, at `http://ADDR/jwks`), it is a `jwks_uri`, so
//! that the README walk-through — and anyone trying Tollgate — needs no other software to play an
//! identity provider.
//!
//! The key file and `--alg` are read exactly as `tollgate assertion` reads them, and the JWK
//! passes the server's own key policy ([`crate::keys::jwk::signing_key`]): a key the server would
//! refuse (RSA under 2048 bits) is refused here, with the same reason. Only the public half
//! ever leaves this module.

use crate::keys::jwk::signing_key;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, SecretDocument};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// `{"keys": [jwk]}` for the private key in the PEM file at `path`, to be used with `alg`; the
/// JWK carries `kid` when given, `alg` and `use: sig`. Errors name the file.
pub fn from_key_file(path: &Path, alg: Algorithm, kid: Option<&str>) -> Result<Value, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |e: String| format!("{}: not a private key for {alg:?}: {e}", path.display());
    let mut jwk = public_jwk(&pem, alg).map_err(bad)?;
    jwk["alg"] = crate::assertion::name(alg).into();
    jwk["use"] = "sig".into();
    if let Some(kid) = kid {
        jwk["kid"] = kid.into();
    }
    let jwk = signing_key(&jwk).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(json!({ "keys": [jwk] }))
}

/// The public JWK members (`kty`, `n`/`e`, `crv`/`x`/`y`) of a PEM private key: PKCS#8, or PKCS#1
/// for RSA.
fn public_jwk(pem: &str, alg: Algorithm) -> Result<Value, String> {
    let b64 = |bytes: &[u8]| Value::from(URL_SAFE_NO_PAD.encode(bytes));
    let pkcs8 = || -> Result<SecretDocument, String> {
        let (_label, der) = SecretDocument::from_pem(pem).map_err(|e| e.to_string())?;
        Ok(der)
    };
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            let (signing, crv) = match alg {
                Algorithm::ES256 => (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256"),
                _ => (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384"),
            };
            let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8()?.as_bytes(), &SystemRandom::new())
                .map_err(|e| format!("{e} (a PKCS#8 EC key on {crv} is required)"))?;
            // An uncompressed point: 0x04 ‖ x ‖ y.
            let (x, y) =
                pair.public_key().as_ref()[1..].split_at(if crv == "P-256" { 32 } else { 48 });
            Ok(json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)}))
        }
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8()?.as_bytes())
                .map_err(|e| format!("{e} (a PKCS#8 Ed25519 key is required)"))?;
            Ok(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())}))
        }
        _ => {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
                .map_err(|e| format!("{e} (a PKCS#8 or PKCS#1 RSA key is required)"))?;
            Ok(
                json!({"kty": "RSA", "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())}),
            )
        }
    }
}

/// Serves `jwks` at `http://{listener's address}/jwks` (404 elsewhere) until `shutdown`
/// completes. `on_ready` receives the URI once the socket is bound.
pub async fn serve(
    addr: SocketAddr,
    jwks: Value,
    on_ready: impl FnOnce(&str),
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    use warp::Filter;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let body = bytes::Bytes::from(jwks.to_string());
    let routes = warp::any()
        .and(warp::path::full())
        .map(move |path: warp::path::FullPath| {
            let (status, body) = match path.as_str() {
                "/jwks" => (200, body.clone()),
                _ => (404, bytes::Bytes::from_static(b"{\"error\":\"not found\"}")),
            };
            let mut response = warp::reply::Response::new(body.into());
            *response.status_mut() = warp::http::StatusCode::from_u16(status)
                .unwrap_or(warp::http::StatusCode::NOT_FOUND);
            let headers = response.headers_mut();
            headers.insert("content-type", "application/json".parse().expect("valid"));
            headers.insert("cache-control", "max-age=300".parse().expect("valid"));
            response
        });
    on_ready(&format!("http://{bound}/jwks"));
    let metrics = Arc::new(crate::metrics::Metrics::default());
    crate::http::serve(
        listener,
        None,
        routes,
        metrics,
        crate::http::ServeOptions::default(),
        shutdown,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/keys/{name}"))
    }

    #[test]
    fn an_rsa_key_file_gives_the_fixture_public_jwk() {
        let jwks = from_key_file(&fixture("rsa-2048.pem"), Algorithm::PS256, Some("k1")).unwrap();
        let expected: Value =
            serde_json::from_slice(&std::fs::read(fixture("rsa-2048.jwk.json")).unwrap()).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!((&key["n"], &key["e"]), (&expected["n"], &expected["e"]));
        assert_eq!(
            (&key["kid"], &key["alg"], &key["use"]),
            (&json!("k1"), &json!("PS256"), &json!("sig"))
        );
        assert!(key.get("d").is_none(), "public members only");
    }

    #[test]
    fn ec_and_ed25519_keys_match_what_they_sign() {
        use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING as P384, *};
        let rng = SystemRandom::new();
        let dir = tempfile::tempdir().unwrap();
        let pem = |der: &[u8]| {
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = (0..body.len())
                .step_by(64)
                .map(|i| &body[i..(i + 64).min(body.len())])
                .collect();
            let body = lines.join("\n");
            format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
        };
        for (alg, der, public) in [
            {
                let d = EcdsaKeyPair::generate_pkcs8(&P384, &rng).unwrap();
                let p = EcdsaKeyPair::from_pkcs8(&P384, d.as_ref(), &rng).unwrap();
                (
                    Algorithm::ES384,
                    d.as_ref().to_vec(),
                    p.public_key().as_ref()[1..49].to_vec(),
                )
            },
            {
                let d = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                let p = Ed25519KeyPair::from_pkcs8(d.as_ref()).unwrap();
                (
                    Algorithm::EdDSA,
                    d.as_ref().to_vec(),
                    p.public_key().as_ref().to_vec(),
                )
            },
        ] {
            let file = dir.path().join("key.pem");
            std::fs::write(&file, pem(&der)).unwrap();
            let jwks = from_key_file(&file, alg, None).unwrap();
            assert_eq!(jwks["keys"][0]["x"], URL_SAFE_NO_PAD.encode(public));
            assert!(jwks["keys"][0].get("kid").is_none());
        }
    }

    #[test]
    fn keys_the_server_would_refuse_are_refused() {
        let short = from_key_file(&fixture("rsa-1024.pem"), Algorithm::RS256, None).unwrap_err();
        assert!(
            short.contains("rsa-1024.pem") && short.contains("2048"),
            "{short}"
        );
        let wrong = from_key_file(&fixture("rsa-2048.pem"), Algorithm::ES256, None).unwrap_err();
        assert!(wrong.contains("not a private key for ES256"), "{wrong}");
        let missing = from_key_file(&fixture("nope.pem"), Algorithm::RS256, None).unwrap_err();
        assert!(missing.contains("nope.pem"), "{missing}");
    }

    #[tokio::test]
    async fn serves_the_set_at_jwks_only() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]});
        let server = tokio::spawn(serve(
            "127.0.0.1:0".parse().unwrap(),
            jwks.clone(),
            move |uri| {
                let _ = tx.send(uri.to_owned());
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let uri = rx.await.unwrap();
        let client = reqwest::Client::new();
        let ok = client.get(&uri).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.json::<Value>().await.unwrap(), jwks);
        let other = client.get(uri.replace("/jwks", "/x")).send().await.unwrap();
        assert_eq!(other.status(), 404);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
