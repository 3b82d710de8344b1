//! The attack catalog (issue 10), end to end: the known ways of forging or mangling a JWT, each
//! sent both as the JWT bearer grant's `assertion` and as a `client_assertion` to one real
//! `tollgate serve` with the bundled plugins.
//!
//! Why it is built the way it is:
//! - **Hand-written JOSE.** Headers and claims are JSON *text* (or raw bytes), encoded here, so
//!   that duplicate members, non-UTF-8 bytes, odd numbers and bad base64 reach the server
//!   exactly as an attacker would send them; a JSON library would normalise them away.
//! - **Validly signed wherever the attack allows it**, over the exact bytes sent and by a key
//!   the server trusts, so that no rejection can rest on a bad signature alone.
//! - **One table, two targets.** A case is a function of the party the token claims to come
//!   from (an identity provider for the grant, a client for client authentication), so both
//!   plugins face the same list. The expected answer is the target's own error —
//!   `invalid_grant` (400) or `invalid_client` (401) — never 200, never 5xx, with a body that
//!   echoes neither the token nor any of its segments, and a description that quotes at most
//!   a bounded slice of what the token says.
//! - **One server for the file**, and controls (valid tokens that must pass) first, so that a
//!   broken setup cannot pass for a wall of correct rejections. The whole table runs and every
//!   miss is reported at once.

mod common;
use common::now;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use common::api::{deployment, Api};
use common::idp::{ec256, ed25519, rsa, Answer, JwksServer, TestKey};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The token endpoint URL: the audience of a client assertion and the default alias of an IdP.
const AUDIENCE: &str = "https://localhost:9443/oauth2/token";
const IDP: &str = "https://idp.attacks.example";
/// The longest error description any rejection may have: a validator's reason as
/// `JwtError::into_oauth` cuts it, and its `...`.
const MAX_DESCRIPTION: usize = tollgate_core::MAX_REASON_BYTES + 3;
/// The order n of P-256, big-endian.
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn identity() -> String {
    const LISTENER: &str = "org.wso2.carbon.identity.core.handler.AbstractIdentityHandler";
    identity_with(&format!(
        r#"    <EventListener type="{LISTENER}" name="org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler" orderId="100" enable="true"/>
    <EventListener type="{LISTENER}" name="org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator" orderId="899" enable="true"/>
    <EventListener type="{LISTENER}" name="org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator" orderId="10" enable="true"/>"#
    ))
}

// ---------------------------------------------------------------------------------------------
// Crafting tokens.

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A key and the algorithm it signs with (which need not be what the header says).
#[derive(Clone)]
struct Signer {
    key: EncodingKey,
    alg: Algorithm,
}

impl Signer {
    fn of(key: &TestKey) -> Signer {
        Signer {
            key: key.encoding.clone(),
            alg: key.alg,
        }
    }

    fn hmac(secret: &[u8], alg: Algorithm) -> Signer {
        Signer {
            key: EncodingKey::from_secret(secret),
            alg,
        }
    }

    /// `input.signature`: `input` (the literal signing input, however malformed) signed.
    fn seal(&self, input: &str) -> String {
        format!("{input}.{}", self.signature(input))
    }

    fn signature(&self, input: &str) -> String {
        jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, self.alg).unwrap()
    }

    /// A compact JWS of these header and claims bytes.
    fn jws(&self, header: impl AsRef<[u8]>, claims: impl AsRef<[u8]>) -> String {
        self.seal(&format!("{}.{}", b64(header), b64(claims)))
    }
}

/// Whom a token claims to come from: the IdP (grant) or the client (client authentication).
struct Party {
    iss: String,
    sub: String,
}

/// A change to the valid claims; values are raw JSON.
enum Edit {
    /// Replace a member's value (or add the member).
    Set(&'static str, String),
    Drop(&'static str),
    /// Add a second member of that name after the first (a duplicate).
    Repeat(&'static str, String),
}

fn set(name: &'static str, raw: impl Into<String>) -> Edit {
    Edit::Set(name, raw.into())
}

fn repeat(name: &'static str, raw: impl Into<String>) -> Edit {
    Edit::Repeat(name, raw.into())
}

/// What the cases sign with and point at.
struct Ctx {
    /// Trusted keys: RSA `r`, P-256 `e`, Ed25519 `o` (the IdP's and the client's JWKS).
    rsa: TestKey,
    ec: TestKey,
    ed: TestKey,
    /// The attacker's keys, never registered anywhere.
    evil_rsa: TestKey,
    evil_ec: TestKey,
    /// A self-signed certificate of `evil_ec` (base64 DER, as `x5c` carries it).
    evil_cert: String,
    /// The attacker's JWKS URL (serving the attacker's keys); must never be fetched.
    evil_jwks: String,
    /// The trusted RSA key's public half as SPKI and PKCS#1 PEM (HMAC key-confusion secrets).
    rsa_spki_pem: String,
    rsa_pkcs1_pem: String,
    jti: AtomicUsize,
}

impl Ctx {
    fn r(&self) -> Signer {
        Signer::of(&self.rsa)
    }
    fn e(&self) -> Signer {
        Signer::of(&self.ec)
    }
    fn o(&self) -> Signer {
        Signer::of(&self.ed)
    }

    /// The members of a valid assertion for `p`, as raw JSON, with a fresh `jti`.
    fn members(&self, p: &Party) -> Vec<(String, String)> {
        let now = now();
        let jti = format!("attack-{}", self.jti.fetch_add(1, Ordering::SeqCst));
        [
            ("iss", json_str(&p.iss)),
            ("sub", json_str(&p.sub)),
            ("aud", json_str(AUDIENCE)),
            ("exp", (now + 300).to_string()),
            ("iat", (now - 5).to_string()),
            ("jti", json_str(&jti)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The claims of a valid assertion for `p`, as JSON text, with `edits` applied.
    fn claims(&self, p: &Party, edits: &[Edit]) -> String {
        let mut members = self.members(p);
        for edit in edits {
            match edit {
                Edit::Set(name, raw) => match members.iter_mut().find(|(k, _)| k == name) {
                    Some(member) => member.1 = raw.clone(),
                    None => members.push((name.to_string(), raw.clone())),
                },
                Edit::Drop(name) => members.retain(|(k, _)| k != name),
                Edit::Repeat(name, raw) => members.push((name.to_string(), raw.clone())),
            }
        }
        object(&members)
    }

    /// Valid claims for `p` signed RS256 by the trusted key, under `header`.
    fn rs256(&self, header: &str, p: &Party, edits: &[Edit]) -> String {
        self.r().jws(header, self.claims(p, edits))
    }
}

/// A JSON object of these members, names written as they are (escapes included) and values
/// raw JSON.
fn object(members: &[(String, String)]) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// `json` with the first `marker` replaced by `bytes` (to plant non-UTF-8 bytes).
fn plant(json: &str, marker: &str, bytes: &[u8]) -> Vec<u8> {
    let at = json.find(marker).expect("marker");
    [
        &json.as_bytes()[..at],
        bytes,
        &json.as_bytes()[at + marker.len()..],
    ]
    .concat()
}

/// `json` padded with trailing spaces (still the same JSON) until `ok` holds for it.
fn pad_until(json: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut json = json.to_string();
    while !ok(&json) {
        json.push(' ');
    }
    json
}

/// A fixed-size (r || s) ECDSA signature as ASN.1 DER, the encoding JWS forbids.
fn der_signature(fixed: &[u8]) -> Vec<u8> {
    let integer = |half: &[u8]| {
        let trimmed: Vec<u8> = half.iter().copied().skip_while(|b| *b == 0).collect();
        let value = if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            [&[0u8][..], &trimmed].concat()
        } else {
            trimmed
        };
        [&[0x02, value.len() as u8][..], &value].concat()
    };
    let body = [integer(&fixed[..32]), integer(&fixed[32..])].concat();
    [&[0x30, body.len() as u8][..], &body].concat()
}

/// A valid ES256 signing input for `p` with its signature replaced by `signature` bytes.
fn es256_with_signature(c: &Ctx, p: &Party, signature: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"ES256","kid":"e"}"#),
        b64(c.claims(p, &[]))
    );
    format!("{input}.{}", b64(signature))
}

/// The decoded valid ES256 signature of a token for `p`.
fn es256_fixed(c: &Ctx, p: &Party) -> Vec<u8> {
    let token = c.e().jws(r#"{"alg":"ES256","kid":"e"}"#, c.claims(p, &[]));
    let signature = token.rsplit('.').next().unwrap();
    URL_SAFE_NO_PAD.decode(signature).unwrap()
}

type Craft = Box<dyn Fn(&Ctx, &Party) -> String>;

struct Case {
    name: String,
    craft: Craft,
}

fn case(name: impl Into<String>, craft: impl Fn(&Ctx, &Party) -> String + 'static) -> Case {
    Case {
        name: name.into(),
        craft: Box::new(craft),
    }
}

/// A case whose claims are the valid ones with `edits`, signed RS256 by the trusted key.
fn claims_case(name: impl Into<String>, edits: Vec<Edit>) -> Case {
    case(name, move |c, p| {
        c.rs256(r#"{"alg":"RS256","kid":"r"}"#, p, &edits)
    })
}

/// A case whose header is `header` over valid claims, signed RS256 by the trusted key.
fn header_case(name: impl Into<String>, header: &'static str) -> Case {
    case(name, move |c, p| c.rs256(header, p, &[]))
}

// ---------------------------------------------------------------------------------------------
// The catalog.

fn catalog() -> Vec<Case> {
    let mut cases = Vec::new();

    // alg none, in any case, with and without a signature (a valid RS256 one by the trusted key).
    for none in ["none", "None", "NONE", "nOnE"] {
        cases.push(case(format!("alg {none}, no signature"), move |c, p| {
            let header = format!(r#"{{"alg":"{none}","kid":"r"}}"#);
            format!("{}.{}.", b64(header), b64(c.claims(p, &[])))
        }));
        cases.push(case(
            format!("alg {none}, valid RS256 signature"),
            move |c, p| c.rs256(&format!(r#"{{"alg":"{none}","kid":"r"}}"#), p, &[]),
        ));
    }
    cases.push(case("alg none, no kid, no signature", |c, p| {
        format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(c.claims(p, &[])))
    }));

    // HMAC with the trusted public key as the secret (key confusion).
    type Secret = fn(&Ctx) -> Vec<u8>;
    let secrets: [(&str, Secret); 5] = [
        ("SPKI PEM", |c| c.rsa_spki_pem.clone().into_bytes()),
        ("PKCS#1 PEM", |c| c.rsa_pkcs1_pem.clone().into_bytes()),
        ("JWK n bytes", |c| {
            URL_SAFE_NO_PAD
                .decode(c.rsa.jwk["n"].as_str().unwrap())
                .unwrap()
        }),
        ("JWK n text", |c| {
            c.rsa.jwk["n"].as_str().unwrap().as_bytes().to_vec()
        }),
        ("JWK JSON", |c| c.rsa.jwk.to_string().into_bytes()),
    ];
    for (what, secret) in secrets {
        for (name, alg) in [("HS256", Algorithm::HS256), ("HS512", Algorithm::HS512)] {
            cases.push(case(
                format!("{name} keyed with the {what}"),
                move |c, p| {
                    Signer::hmac(&secret(c), alg)
                        .jws(format!(r#"{{"alg":"{name}","kid":"r"}}"#), c.claims(p, &[]))
                },
            ));
        }
    }
    cases.push(case("HS256 keyed with the EC JWK x", |c, p| {
        let x = URL_SAFE_NO_PAD
            .decode(c.ec.jwk["x"].as_str().unwrap())
            .unwrap();
        Signer::hmac(&x, Algorithm::HS256).jws(r#"{"alg":"HS256","kid":"e"}"#, c.claims(p, &[]))
    }));

    // Keys named by the token itself, signed with the attacker's key.
    for (member, kid) in [("jku", "evil"), ("jku", "r"), ("x5u", "evil"), ("x5u", "r")] {
        cases.push(case(
            format!("{member} to the attacker's JWKS, kid {kid}"),
            move |c, p| {
                let header = format!(
                    r#"{{"alg":"RS256","kid":"{kid}","{member}":{}}}"#,
                    json_str(&c.evil_jwks)
                );
                Signer::of(&c.evil_rsa).jws(header, c.claims(p, &[]))
            },
        ));
    }
    for kid in [None, Some("r")] {
        cases.push(case(
            format!("jwk of the attacker's key, kid {kid:?}"),
            move |c, p| {
                let mut header = json!({"alg": "RS256", "jwk": c.evil_rsa.jwk});
                if let Some(kid) = kid {
                    header["kid"] = kid.into();
                    header["jwk"]["kid"] = kid.into();
                }
                Signer::of(&c.evil_rsa).jws(header.to_string(), c.claims(p, &[]))
            },
        ));
    }
    for kid in [None, Some("e")] {
        cases.push(case(
            format!("x5c of the attacker's certificate, kid {kid:?}"),
            move |c, p| {
                let mut header = json!({"alg": "ES256", "x5c": [c.evil_cert]});
                if let Some(kid) = kid {
                    header["kid"] = kid.into();
                }
                Signer::of(&c.evil_ec).jws(header.to_string(), c.claims(p, &[]))
            },
        ));
    }

    // crit.
    cases.push(header_case(
        "crit naming an unknown extension",
        r#"{"alg":"RS256","kid":"r","crit":["urn:x:unknown"],"urn:x:unknown":true}"#,
    ));
    cases.push(header_case(
        "crit b64 false (RFC 7797)",
        r#"{"alg":"RS256","kid":"r","crit":["b64"],"b64":false}"#,
    ));
    cases.push(header_case(
        "crit naming a present header (kid)",
        r#"{"alg":"RS256","kid":"r","crit":["kid"]}"#,
    ));
    cases.push(header_case(
        "crit naming a present custom header",
        r#"{"alg":"RS256","kid":"r","crit":["x-custom"],"x-custom":1}"#,
    ));
    cases.push(header_case(
        "crit empty",
        r#"{"alg":"RS256","kid":"r","crit":[]}"#,
    ));
    cases.push(header_case(
        "crit not an array",
        r#"{"alg":"RS256","kid":"r","crit":"exp"}"#,
    ));

    // kid and iss as injection vectors.
    for (what, kid) in [
        ("path traversal", "../../etc/passwd"),
        ("absolute path", "/dev/zero"),
        ("SQL", "' OR 1=1 --"),
        ("SQL with quotes", "r\"; DROP TABLE clients; --"),
        ("NUL and control bytes", "r\u{0}\r\n"),
        ("URL", "http://127.0.0.1:1/jwks"),
    ] {
        cases.push(case(format!("kid {what}"), move |c, p| {
            c.rs256(
                &format!(r#"{{"alg":"RS256","kid":{}}}"#, json_str(kid)),
                p,
                &[],
            )
        }));
    }
    cases.push(header_case("kid a number", r#"{"alg":"RS256","kid":5}"#));
    cases.push(header_case("kid null", r#"{"alg":"RS256","kid":null}"#));
    cases.push(case("kid of 10 KB", |c, p| {
        c.rs256(
            &format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(10 * 1024)),
            p,
            &[],
        )
    }));
    cases.push(case("iss of 10 KB", |c, p| {
        let iss = json_str(&"i".repeat(10 * 1024));
        c.rs256(r#"{"alg":"RS256","kid":"r"}"#, p, &[set("iss", iss)])
    }));
    cases.push(case("iss SQL", |c, p| {
        c.rs256(
            r#"{"alg":"RS256","kid":"r"}"#,
            p,
            &[set("iss", r#""' OR 1=1 --""#)],
        )
    }));
    cases.push(case("sub of 10 KB (iss a stranger)", |c, p| {
        let sub = json_str(&"s".repeat(10 * 1024));
        c.rs256(
            r#"{"alg":"RS256","kid":"r"}"#,
            p,
            &[set("iss", r#""stranger""#), set("sub", sub)],
        )
    }));

    // Invalid ES256 signatures.
    cases.push(case("ES256 r = s = 0", |c, p| {
        es256_with_signature(c, p, &[0; 64])
    }));
    cases.push(case("ES256 r = n, s = 1", |c, p| {
        let mut signature = hex::decode(P256_ORDER).unwrap();
        signature.extend([0; 31]);
        signature.push(1);
        es256_with_signature(c, p, &signature)
    }));
    cases.push(case("ES256 r = s = n", |c, p| {
        es256_with_signature(c, p, &hex::decode(P256_ORDER.repeat(2)).unwrap())
    }));
    cases.push(case("ES256 valid r, s = 0", |c, p| {
        let mut signature = es256_fixed(c, p);
        signature[32..].fill(0);
        es256_with_signature(c, p, &signature)
    }));
    cases.push(case("ES256 signature truncated to 63 bytes", |c, p| {
        let signature = es256_fixed(c, p);
        es256_with_signature(c, p, &signature[..63])
    }));
    cases.push(case("ES256 signature extended to 65 bytes", |c, p| {
        let mut signature = es256_fixed(c, p);
        signature.push(0);
        es256_with_signature(c, p, &signature)
    }));
    cases.push(case("ES256 valid signature in DER", |c, p| {
        es256_with_signature(c, p, &der_signature(&es256_fixed(c, p)))
    }));
    cases.push(case("ES256 empty signature", |c, p| {
        es256_with_signature(c, p, &[])
    }));

    // The algorithm does not fit the key the kid names (signed by the key of the header's alg).
    for (header, signer) in [
        (r#"{"alg":"RS256","kid":"e"}"#, Ctx::r as fn(&Ctx) -> Signer),
        (r#"{"alg":"RS256","kid":"o"}"#, Ctx::r),
        (r#"{"alg":"ES256","kid":"r"}"#, Ctx::e),
        (r#"{"alg":"ES256","kid":"o"}"#, Ctx::e),
        (r#"{"alg":"EdDSA","kid":"r"}"#, Ctx::o),
        (r#"{"alg":"EdDSA","kid":"e"}"#, Ctx::o),
    ] {
        cases.push(case(format!("key type mismatch {header}"), move |c, p| {
            signer(c).jws(header, c.claims(p, &[]))
        }));
    }
    cases.push(case("PS256 header with the EC kid", |c, p| {
        let signer = Signer {
            alg: Algorithm::PS256,
            ..c.r()
        };
        signer.jws(r#"{"alg":"PS256","kid":"e"}"#, c.claims(p, &[]))
    }));
    cases.push(case("ES384 header with the P-256 kid", |c, p| {
        es256_with_signature(c, p, &[1; 96]).replacen(
            &b64(r#"{"alg":"ES256","kid":"e"}"#),
            &b64(r#"{"alg":"ES384","kid":"e"}"#),
            1,
        )
    }));

    // Other alg values.
    for header in [
        r#"{"kid":"r"}"#,
        r#"{"alg":"","kid":"r"}"#,
        r#"{"alg":256,"kid":"r"}"#,
        r#"{"alg":null,"kid":"r"}"#,
        r#"{"alg":["RS256"],"kid":"r"}"#,
        r#"{"alg":"rs256","kid":"r"}"#,
        r#"{"alg":"RS256 ","kid":"r"}"#,
        r#"{"alg":"RSA-OAEP","kid":"r"}"#,
    ] {
        cases.push(header_case(format!("alg {header}"), header));
    }

    // JWE and nested JWTs.
    cases.push(case("JWE (5 segments)", |_, _| {
        let header = b64(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"r"}"#);
        format!(
            "{header}.{}.{}.{}.{}",
            b64([1; 256]),
            b64([2; 12]),
            b64("x"),
            b64([3; 16])
        )
    }));
    cases.push(case("JWE dir (5 segments, empty key)", |_, _| {
        let header = b64(r#"{"alg":"dir","enc":"A128GCM"}"#);
        format!("{header}..{}.{}.{}", b64([2; 12]), b64("x"), b64([3; 16]))
    }));
    cases.push(header_case(
        "cty JWT over plain claims",
        r#"{"alg":"RS256","kid":"r","cty":"JWT"}"#,
    ));
    cases.push(header_case(
        "cty jwt (lower case)",
        r#"{"alg":"RS256","kid":"r","cty":"jwt"}"#,
    ));
    cases.push(case("nested JWT (cty JWT, payload a JWT)", |c, p| {
        let inner = c.rs256(r#"{"alg":"RS256","kid":"r"}"#, p, &[]);
        c.r().jws(r#"{"alg":"RS256","kid":"r","cty":"JWT"}"#, inner)
    }));
    cases.push(case("payload a JWT without cty", |c, p| {
        let inner = c.rs256(r#"{"alg":"RS256","kid":"r"}"#, p, &[]);
        c.r().jws(r#"{"alg":"RS256","kid":"r"}"#, inner)
    }));

    // Duplicate members (every one validly signed).
    cases.push(header_case(
        "header with two alg (none, then RS256)",
        r#"{"alg":"none","kid":"r","alg":"RS256"}"#,
    ));
    cases.push(header_case(
        "header with two alg (HS256, then RS256)",
        r#"{"alg":"HS256","kid":"r","alg":"RS256"}"#,
    ));
    cases.push(header_case(
        "header with two equal alg",
        r#"{"alg":"RS256","kid":"r","alg":"RS256"}"#,
    ));
    cases.push(header_case(
        "header with two kid",
        r#"{"alg":"RS256","kid":"evil","kid":"r"}"#,
    ));
    cases.push(header_case(
        "header with alg and an escaped alg",
        r#"{"alg":"none","kid":"r","a\u006cg":"RS256"}"#,
    ));
    cases.push(header_case(
        "header with two crit (second one empty-handed)",
        r#"{"alg":"RS256","kid":"r","crit":["x"],"x":1,"crit":null}"#,
    ));
    cases.push(case(
        "claims with two iss (stranger, then the party)",
        |c, p| {
            let mut members = c.members(p);
            members.insert(0, ("iss".into(), r#""stranger""#.into()));
            c.r().jws(r#"{"alg":"RS256","kid":"r"}"#, object(&members))
        },
    ));
    cases.push(claims_case(
        "claims with two iss (the party, then a stranger)",
        vec![repeat("iss", r#""stranger""#)],
    ));
    cases.push(claims_case(
        "claims with two sub",
        vec![repeat("sub", r#""admin""#)],
    ));
    cases.push(claims_case(
        "claims with two exp (expired, then valid)",
        vec![set("exp", "1000000000"), repeat("exp", "99999999999")],
    ));
    cases.push(claims_case(
        "claims with two equal aud",
        vec![repeat("aud", "\"https://localhost:9443/oauth2/token\"")],
    ));
    cases.push(claims_case(
        "claims with an escaped duplicate sub",
        vec![repeat("s\\u0075b", r#""admin""#)],
    ));

    // Non-UTF-8 bytes (validly signed over the raw bytes).
    for (what, bytes) in [
        ("0xff", &b"\xff"[..]),
        ("a broken sequence", b"\xc3\x28"),
        ("an overlong '/'", b"\xc0\xaf"),
        ("a UTF-16 surrogate", b"\xed\xa0\x80"),
    ] {
        cases.push(case(format!("header with {what}"), move |c, p| {
            let header = plant(r#"{"alg":"RS256","kid":"r","x":"MARK"}"#, "MARK", bytes);
            c.r().jws(header, c.claims(p, &[]))
        }));
        cases.push(case(format!("claims with {what}"), move |c, p| {
            let claims = plant(&c.claims(p, &[set("x", "\"MARK\"")]), "MARK", bytes);
            c.r().jws(r#"{"alg":"RS256","kid":"r"}"#, claims)
        }));
    }
    cases.push(claims_case(
        "claims with a lone surrogate escape",
        vec![set("x", r#""\ud800""#)],
    ));
    cases.push(case("claims with a byte order mark", |c, p| {
        let claims = [&b"\xef\xbb\xbf"[..], c.claims(p, &[]).as_bytes()].concat();
        c.r().jws(r#"{"alg":"RS256","kid":"r"}"#, claims)
    }));
    cases.push(case("header with a byte order mark", |c, p| {
        let header = [&b"\xef\xbb\xbf"[..], br#"{"alg":"RS256","kid":"r"}"#].concat();
        c.r().jws(header, c.claims(p, &[]))
    }));

    // Oversized tokens (validly signed).
    cases.push(case("just over 16 KiB", |c, p| {
        let header = b64(r#"{"alg":"RS256","kid":"r"}"#);
        let mut pad = 12_000;
        loop {
            let claims = c.claims(p, &[set("pad", json_str(&"x".repeat(pad)))]);
            let input = format!("{header}.{}", b64(claims));
            // An RS256 (2048-bit) signature is 342 characters.
            if input.len() + 1 + 342 > 16 * 1024 {
                return c.r().seal(&input);
            }
            pad += 1;
        }
    }));
    for kib in [20, 48] {
        cases.push(case(format!("{kib} KiB"), move |c, p| {
            let pad = json_str(&"x".repeat(kib * 1024 * 3 / 4));
            c.rs256(r#"{"alg":"RS256","kid":"r"}"#, p, &[set("pad", pad)])
        }));
    }

    // NumericDates of the wrong type or out of range.
    let now = now();
    for (claim, raw) in [
        ("exp", format!("\"{}\"", now + 300)),
        ("iat", format!("\"{}\"", now - 5)),
        ("nbf", format!("\"{}\"", now - 5)),
        ("nbf", format!("{}.5", now + 3600)),
    ]
    .into_iter()
    .chain(
        [
            ("exp", "1.7e9"),
            ("exp", "1700000000.5"),
            ("iat", "1.7e9"),
            ("iat", "1700000000.5"),
            ("nbf", "1e10"),
            ("exp", "1e300"),
            ("iat", "1e300"),
            ("nbf", "1e300"),
            ("exp", "1e400"),
            ("exp", "18446744073709551616"),
            ("iat", "18446744073709551616"),
            ("nbf", "18446744073709551616"),
            ("exp", "9223372036854775807"),
            ("exp", "-1"),
            ("exp", "-1e300"),
            ("iat", "-1"),
            ("iat", "-9223372036854775808"),
            ("iat", "-1e300"),
            ("exp", "null"),
            ("exp", "true"),
            ("exp", "[]"),
            ("exp", "{}"),
            ("nbf", "null"),
            ("iat", "{}"),
        ]
        .map(|(claim, raw)| (claim, raw.to_string())),
    ) {
        cases.push(claims_case(format!("{claim} {raw}"), vec![set(claim, raw)]));
    }
    cases.push(claims_case("exp missing", vec![Edit::Drop("exp")]));

    // aud of the wrong type or value.
    for raw in [
        "1",
        "{\"aud\":\"https://localhost:9443/oauth2/token\"}",
        "[1,2]",
        "[\"https://localhost:9443/oauth2/token\",1]",
        "[[\"https://localhost:9443/oauth2/token\"]]",
        "null",
        "\"\"",
        "[]",
        "true",
        "\"https://localhost:9443/oauth2/token/\"",
    ] {
        cases.push(claims_case(format!("aud {raw}"), vec![set("aud", raw)]));
    }
    cases.push(claims_case("aud missing", vec![Edit::Drop("aud")]));

    // Missing and empty segments.
    type Shape = fn(&str, &str, &str) -> String;
    let shapes: [(&str, Shape); 9] = [
        ("header only", |h, _, _| h.to_string()),
        ("two segments", |h, c, _| format!("{h}.{c}")),
        ("empty signature", |h, c, _| format!("{h}.{c}.")),
        ("empty claims", |h, _, s| format!("{h}..{s}")),
        ("empty header", |_, c, s| format!(".{c}.{s}")),
        ("only dots", |_, _, _| "..".to_string()),
        ("four segments", |h, c, s| format!("{h}.{c}.{s}.{s}")),
        ("a trailing dot", |h, c, s| format!("{h}.{c}.{s}.")),
        ("a leading dot", |h, c, s| format!(".{h}.{c}.{s}")),
    ];
    for (what, shape) in shapes {
        cases.push(case(format!("segments: {what}"), move |c, p| {
            let token = c.rs256(r#"{"alg":"RS256","kid":"r"}"#, p, &[]);
            let mut parts = token.split('.');
            let (h, cl, s) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            shape(h, cl, s)
        }));
    }
    cases.push(header_case("header an array", r#"["RS256"]"#));
    cases.push(header_case("header a string", r#""RS256""#));
    cases.push(header_case("header null", "null"));
    cases.push(header_case(
        "header with trailing data",
        r#"{"alg":"RS256","kid":"r"}{}"#,
    ));
    cases.push(case("claims an array", |c, _| {
        c.r().jws(r#"{"alg":"RS256","kid":"r"}"#, "[]")
    }));
    cases.push(case("claims a string", |c, _| {
        c.r().jws(r#"{"alg":"RS256","kid":"r"}"#, "\"x\"")
    }));

    // Bad base64url: every one validly signed over the exact characters sent.
    let header = r#"{"alg":"RS256","kid":"r"}"#;
    cases.push(case("base64: padded header", move |c, p| {
        let padded = pad_until(header, |j| URL_SAFE.encode(j).ends_with('='));
        c.r().seal(&format!(
            "{}.{}",
            URL_SAFE.encode(padded),
            b64(c.claims(p, &[]))
        ))
    }));
    cases.push(case("base64: padded claims", move |c, p| {
        let claims = pad_until(&c.claims(p, &[]), |j| URL_SAFE.encode(j).ends_with('='));
        c.r()
            .seal(&format!("{}.{}", b64(header), URL_SAFE.encode(claims)))
    }));
    cases.push(case("base64: padded signature", move |c, p| {
        let input = format!("{}.{}", b64(header), b64(c.claims(p, &[])));
        let signature = URL_SAFE_NO_PAD.decode(c.r().signature(&input)).unwrap();
        format!("{input}.{}", URL_SAFE.encode(pad_bytes(signature)))
    }));
    cases.push(case("base64: + and / in the header", |c, p| {
        let header = r#"{"alg":"RS256","kid":"r","x":"???>>>~~~"}"#;
        let encoded = STANDARD_NO_PAD.encode(header);
        assert!(encoded.contains(['+', '/']), "{encoded}");
        c.r().seal(&format!("{encoded}.{}", b64(c.claims(p, &[]))))
    }));
    cases.push(case("base64: + and / in the claims", move |c, p| {
        let claims = c.claims(p, &[set("x", r#""???>>>~~~""#)]);
        let encoded = STANDARD_NO_PAD.encode(claims);
        assert!(encoded.contains(['+', '/']), "{encoded}");
        c.r().seal(&format!("{}.{encoded}", b64(header)))
    }));
    cases.push(case("base64: + and / in the signature", move |c, p| {
        // Sign until the standard alphabet differs from base64url (jtis change the input).
        loop {
            let input = format!("{}.{}", b64(header), b64(c.claims(p, &[])));
            let raw = URL_SAFE_NO_PAD.decode(c.r().signature(&input)).unwrap();
            let encoded = STANDARD_NO_PAD.encode(raw);
            if encoded.contains(['+', '/']) {
                return format!("{input}.{encoded}");
            }
        }
    }));
    for (what, at, ws) in [
        ("a space in the header", 0, " "),
        ("a newline in the claims", 1, "\n"),
        ("a tab in the claims", 1, "\t"),
        ("CRLF in the header", 0, "\r\n"),
    ] {
        cases.push(case(format!("base64: {what}"), move |c, p| {
            let mut segments = [b64(header), b64(c.claims(p, &[]))];
            let middle = segments[at].len() / 2;
            segments[at].insert_str(middle, ws);
            c.r().seal(&segments.join("."))
        }));
    }
    cases.push(case("base64: a space before the signature", move |c, p| {
        let token = c.rs256(header, p, &[]);
        let (input, signature) = token.rsplit_once('.').unwrap();
        format!("{input}. {signature}")
    }));
    cases.push(case("base64: a trailing newline", move |c, p| {
        format!("{}\n", c.rs256(header, p, &[]))
    }));
    cases.push(case("base64: non-canonical trailing bits", move |c, p| {
        let padded = pad_until(header, |j| j.len() % 3 != 0);
        let mut encoded = b64(padded);
        let last = encoded.pop().unwrap();
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = ALPHABET.iter().position(|a| *a as char == last).unwrap();
        encoded.push(ALPHABET[index | 1] as char);
        c.r().seal(&format!("{encoded}.{}", b64(c.claims(p, &[]))))
    }));
    cases.push(case("base64: percent-encoded segment", move |c, p| {
        let claims = b64(c.claims(p, &[]));
        c.r().seal(&format!("{}.%{}", b64(header), &claims[1..]))
    }));
    cases
}

/// `bytes` extended by one zero byte when needed so that padded base64 shows `=`.
fn pad_bytes(mut bytes: Vec<u8>) -> Vec<u8> {
    if !URL_SAFE.encode(&bytes).ends_with('=') {
        bytes.push(0);
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// The run.

#[derive(Clone, Copy, Debug)]
enum Target {
    Grant,
    Client,
}

struct Env {
    _base: tempfile::TempDir,
    _server: Server,
    api: Api,
    /// The client that exchanges assertions (client_secret_basic).
    basic: (String, String),
    /// The private_key_jwt client.
    client_id: String,
}

impl Env {
    fn party(&self, target: Target) -> Party {
        match target {
            Target::Grant => Party {
                iss: IDP.into(),
                sub: "alice".into(),
            },
            Target::Client => Party {
                iss: self.client_id.clone(),
                sub: self.client_id.clone(),
            },
        }
    }

    /// Sends `token` to `target`; (status, body as sent).
    async fn send(&self, target: Target, token: &str) -> (u16, String) {
        match target {
            Target::Grant => {
                self.api
                    .token_text(
                        None,
                        Some((&self.basic.0, &self.basic.1)),
                        &[("grant_type", GRANT), ("assertion", token)],
                    )
                    .await
            }
            Target::Client => {
                self.api
                    .token_text(
                        None,
                        None,
                        &[
                            ("grant_type", "client_credentials"),
                            ("client_assertion_type", ASSERTION_TYPE),
                            ("client_assertion", token),
                        ],
                    )
                    .await
            }
        }
    }
}

/// What is wrong with the answer to an attack on `target` (`None`: the right rejection).
fn misjudged(target: Target, token: &str, status: u16, body: &str) -> Option<String> {
    let (want_status, want_error) = match target {
        Target::Grant => (400, "invalid_grant"),
        Target::Client => (401, "invalid_client"),
    };
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if status != want_status || parsed["error"] != want_error {
        return Some(format!("{status} {body:.300}"));
    }
    let echoed = body.contains(token.trim())
        || token
            .split(['.', ' ', '\n', '\t', '\r'])
            .filter(|s| s.len() >= 8)
            .any(|s| body.contains(s));
    if echoed {
        return Some(format!("echoes the token: {body:.300}"));
    }
    // A description may quote a claim or header of the token, but only so much of it.
    let description = parsed["error_description"].as_str().unwrap_or_default();
    (description.len() > MAX_DESCRIPTION)
        .then(|| format!("a description of {} bytes", description.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_refused_with_the_assertions_own_error() {
    let base = tempfile::tempdir().unwrap();
    bundled_plugins(&base.path().join("dropins"));
    let conf = conf_dir(base.path(), &deployment(""), &identity());
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server.url);

    // The trusted keys, published at a JWKS URI for both the IdP and the client.
    let (r, e, o) = (rsa("rsa-2048", "r"), ec256("e"), ed25519("o"));
    let trusted = JwksServer::start(Answer::Status(404)).await;
    trusted.serve(&[&r.jwk, &e.jwk, &o.jwk], &[]);
    api.idp(None, IDP, json!({"jwksUri": trusted.uri})).await;
    let body = api
        .client(None, json!({"client_name": "app", "grant_types": [GRANT]}))
        .await;
    let basic = (
        body["client_id"].as_str().unwrap().to_string(),
        body["client_secret"].as_str().unwrap().to_string(),
    );
    let body = api
        .client(
            None,
            json!({"client_name": "svc", "token_endpoint_auth_method": "private_key_jwt",
                   "grant_types": ["client_credentials"], "jwks_uri": trusted.uri}),
        )
        .await;
    let env = Env {
        _base: base,
        _server: server,
        api,
        basic,
        client_id: body["client_id"].as_str().unwrap().to_string(),
    };

    // The attacker's keys, and a JWKS server of theirs that nothing may ever fetch.
    let evil_rsa = rsa("rsa-2048-b", "evil");
    let evil_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = evil_pair.public_key_raw();
    let evil_ec = TestKey {
        encoding: EncodingKey::from_ec_der(&evil_pair.serialize_der()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": "evil",
                    "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        alg: Algorithm::ES256,
    };
    let evil_cert = rcgen::CertificateParams::new(vec!["attacker.example".into()])
        .unwrap()
        .self_signed(&evil_pair)
        .unwrap();
    let evil = JwksServer::start(Answer::Status(404)).await;
    evil.serve(&[&evil_rsa.jwk, &evil_ec.jwk], &[]);

    let public = {
        use rsa::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(root().join("tests/fixtures/keys/rsa-2048.pem")).unwrap();
        rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
            .unwrap()
            .to_public_key()
    };
    let ctx = Ctx {
        rsa_spki_pem: {
            use rsa::pkcs8::{EncodePublicKey, LineEnding};
            public.to_public_key_pem(LineEnding::LF).unwrap()
        },
        rsa_pkcs1_pem: {
            use rsa::pkcs1::{EncodeRsaPublicKey, LineEnding};
            public.to_pkcs1_pem(LineEnding::LF).unwrap()
        },
        rsa: r,
        ec: e,
        ed: o,
        evil_rsa,
        evil_ec,
        evil_cert: STANDARD.encode(evil_cert.der()),
        evil_jwks: evil.uri.clone(),
        jti: AtomicUsize::new(0),
    };

    // Controls: valid tokens by every trusted key pass, on both targets.
    for target in [Target::Grant, Target::Client] {
        let p = env.party(target);
        for (header, signer) in [
            (r#"{"alg":"RS256","kid":"r"}"#, ctx.r()),
            (r#"{"alg":"ES256","kid":"e"}"#, ctx.e()),
            (r#"{"alg":"EdDSA","kid":"o"}"#, ctx.o()),
            (r#"{"alg":"RS256"}"#, ctx.r()),
        ] {
            let token = signer.jws(header, ctx.claims(&p, &[]));
            let (status, body) = env.send(target, &token).await;
            assert_eq!(status, 200, "control {target:?} {header}: {body}");
        }
        // NumericDates may have fractions (RFC 7519 §2): the number cases below fail on their
        // values, not on being floats.
        let now = now();
        for edit in [
            set("exp", format!("{}.5", now + 300)),
            set("nbf", "1.7e9"),
            set("iat", format!("{}.5", now - 5)),
        ] {
            let token = ctx.rs256(r#"{"alg":"RS256","kid":"r"}"#, &p, &[edit]);
            let (status, body) = env.send(target, &token).await;
            assert_eq!(status, 200, "control {target:?} fractional date: {body}");
        }
    }

    let started = std::time::Instant::now();
    let mut misses = Vec::new();
    let cases = catalog();
    for case in &cases {
        for target in [Target::Grant, Target::Client] {
            let token = (case.craft)(&ctx, &env.party(target));
            let (status, body) = env.send(target, &token).await;
            let miss = misjudged(target, &token, status, &body);
            let description = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|b| b["error_description"].as_str().map(str::to_owned))
                .unwrap_or_default();
            eprintln!(
                "{:<6} {:<55} {status} {:<5} {}",
                format!("{target:?}"),
                case.name,
                if miss.is_some() { "MISS" } else { "ok" },
                description.chars().take(110).collect::<String>()
            );
            if let Some(miss) = miss {
                misses.push(format!("{target:?} / {}: {miss}", case.name));
            }
        }
    }
    eprintln!(
        "{} cases x 2 targets in {:?}",
        cases.len(),
        started.elapsed()
    );
    assert_eq!(evil.hits(), 0, "the attacker's JWKS URL was fetched");
    assert!(
        misses.is_empty(),
        "{} misjudged:\n{}",
        misses.len(),
        misses.join("\n")
    );
}
