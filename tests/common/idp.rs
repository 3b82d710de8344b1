//! What an identity provider is to the tests: a JWKS server the test controls (loopback HTTP,
//! counted requests, scripted failures), signing keys (RSA from tests/fixtures/keys, EC and
//! Ed25519 made by ring) and JWTs signed with them.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// A JWKS server the test controls.

/// What the JWKS server answers.
#[derive(Clone)]
pub enum Answer {
    /// 200 with this JSON body and extra header lines.
    Json(String, Vec<String>),
    Status(u16),
    Garbage,
    /// A body of this many bytes, with or without a Content-Length.
    Oversize(usize, bool),
    /// Reads the request, then never answers.
    Hang,
    /// 302 to this location.
    Redirect(String),
}

pub struct JwksServer {
    pub uri: String,
    pub base: String,
    pub hits: Arc<AtomicUsize>,
    pub answer: Arc<Mutex<Answer>>,
    pub delay: Arc<Mutex<Duration>>,
}

impl JwksServer {
    pub async fn start(answer: Answer) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(Mutex::new(answer));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let (h, a, d) = (hits.clone(), answer.clone(), delay.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (h, a, d) = (h.clone(), a.clone(), d.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let delay = *d.lock().unwrap();
                    tokio::time::sleep(delay).await;
                    // `/moved` always redirects to `/jwks` on the same server.
                    let answer = if head.starts_with(b"GET /moved ") {
                        Answer::Redirect("/jwks".into())
                    } else {
                        a.lock().unwrap().clone()
                    };
                    let response = match answer {
                        Answer::Json(body, headers) => respond(200, &headers, body.as_bytes()),
                        Answer::Status(code) => respond(code, &[], b"{}"),
                        Answer::Garbage => respond(200, &[], b"<html>not json</html>"),
                        Answer::Oversize(len, with_length) => {
                            let body =
                                format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(len));
                            if with_length {
                                respond(200, &[], body.as_bytes())
                            } else {
                                let mut r =
                                    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
                                r.extend_from_slice(body.as_bytes());
                                r
                            }
                        }
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        Answer::Redirect(to) => respond(302, &[format!("Location: {to}")], b""),
                    };
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        JwksServer {
            uri: format!("{base}/jwks"),
            base,
            hits,
            answer,
            delay,
        }
    }

    pub fn serve(&self, keys: &[&Value], headers: &[&str]) {
        let body = json!({ "keys": keys }).to_string();
        *self.answer.lock().unwrap() =
            Answer::Json(body, headers.iter().map(|h| h.to_string()).collect());
    }

    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn respond(status: u16, headers: &[String], body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

// ---------------------------------------------------------------------------------------------
// Keys and JWTs.

pub struct TestKey {
    pub encoding: EncodingKey,
    pub jwk: Value,
    pub alg: Algorithm,
}

pub fn rsa(file: &str, kid: &str) -> TestKey {
    let dir = super::root().join("tests/fixtures/keys");
    let pem = std::fs::read(dir.join(format!("{file}.pem"))).unwrap();
    let mut jwk: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{file}.jwk.json"))).unwrap())
            .unwrap();
    jwk["kid"] = kid.into();
    TestKey {
        encoding: EncodingKey::from_rsa_pem(&pem).unwrap(),
        jwk,
        alg: Algorithm::RS256,
    }
}

pub fn ed25519(kid: &str) -> TestKey {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    TestKey {
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}),
        alg: Algorithm::EdDSA,
    }
}

/// A JWS of `claims` signed by `key` (its algorithm), with `kid` in the header if given.
pub fn sign(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// An EC P-256 key (ES256).
pub fn ec256(kid: &str) -> TestKey {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING as ALG};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ALG, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ALG, pkcs8.as_ref(), &rng).unwrap();
    let p = pair.public_key().as_ref();
    TestKey {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..])}),
        alg: Algorithm::ES256,
    }
}
