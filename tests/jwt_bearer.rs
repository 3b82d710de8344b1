//! The JWT bearer grant end to end: the real binary with the bundled `jwt-bearer` and
//! `jwks-validator` plugins in dropins (enabled under WSO2's names), identity providers
//! registered over the REST API with a loopback JWKS URI or PEM certificates, clients registered
//! through DCR, and real signed assertions sent as seed 002's curl sends them.

mod common;
use common::now;

use common::api::{deployment, Api, ADMIN};
use common::idp::{ec256, ed25519, rsa, JwksServer, TestKey};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The default alias of an IdP of the super tenant: its token endpoint URL.
const ALIAS: &str = "https://localhost:9443/oauth2/token";

/// identity.xml as WSO2's documentation writes it, with the grant's listener `enable`d or not.
fn identity(grant_enabled: bool) -> String {
    format!(
        r#"<Server>
  <OAuth>
    <SupportedGrantTypes>
      <SupportedGrantType>
        <GrantTypeName>{GRANT}</GrantTypeName>
        <GrantTypeHandlerImplClass>org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler</GrantTypeHandlerImplClass>
      </SupportedGrantType>
    </SupportedGrantTypes>
  </OAuth>
  <EventListeners>
    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler"
                   orderId="100" enable="{grant_enabled}">
      <Property name="PreventTokenReuse">true</Property>
      <Property name="IATValidityPeriodInMinutes">30</Property>
    </EventListener>
    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator"
                   orderId="10" enable="true"/>
  </EventListeners>
</Server>"#
    )
}

struct Env {
    _base: tempfile::TempDir,
    server: Server,
    api: Api,
    http: reqwest::Client,
}

async fn start(grant_enabled: bool) -> Env {
    let base = tempfile::tempdir().unwrap();
    bundled_plugins(&base.path().join("dropins"));
    let conf = conf_dir(base.path(), &deployment(""), &identity(grant_enabled));
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server.url);
    Env {
        _base: base,
        http: api.http.clone(),
        server,
        api,
    }
}

impl Env {
    /// A client allowed the JWT bearer and refresh grants; (client_id, client_secret).
    async fn client(&self, tenant: Option<&str>) -> (String, String) {
        let body = self
            .api
            .client(
                tenant,
                json!({"client_name": "app", "grant_types": [GRANT, "refresh_token"]}),
            )
            .await;
        (
            body["client_id"].as_str().unwrap().into(),
            body["client_secret"].as_str().unwrap().into(),
        )
    }

    async fn idp(&self, tenant: Option<&str>, name: &str, certificate: Value) -> String {
        self.api.idp(tenant, name, certificate).await
    }

    async fn token(
        &self,
        tenant: Option<&str>,
        client: &(String, String),
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        self.api
            .token(tenant, Some((&client.0, &client.1)), form)
            .await
    }

    async fn exchange(&self, client: &(String, String), assertion: &str) -> (u16, Value) {
        self.token(
            None,
            client,
            &[
                ("grant_type", GRANT),
                ("assertion", assertion),
                ("scope", "openid"),
            ],
        )
        .await
    }
}

fn claims(iss: &str, jti: &str) -> Value {
    let now = now();
    json!({"iss": iss, "sub": "alice", "aud": [ALIAS, "wso2-IS"], "exp": now + 300,
           "nbf": now - 5, "iat": now - 5, "jti": jti})
}

/// A self-signed certificate for `key_pair`, as PEM.
fn certificate(key_pair: &rcgen::KeyPair) -> String {
    let params = rcgen::CertificateParams::new(vec!["idp.example".into()]).unwrap();
    params.self_signed(key_pair).unwrap().pem()
}

fn invalid_grant(status: u16, body: &Value, rule: &str) {
    assert_eq!(status, 400, "{rule}: {body}");
    assert_eq!(body["error"], "invalid_grant", "{rule}: {body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(rule), "{rule}: {description}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002s_curl_works_for_jwks_and_certificate_idps_with_every_algorithm() {
    let env = start(true).await;
    let client = env.client(None).await;

    // An IdP publishing RSA, EC and Ed25519 keys at a JWKS URI.
    let (r, e, o) = (rsa("rsa-2048", "r1"), ec256("e1"), ed25519("o1"));
    let jwks = JwksServer::start(common::idp::Answer::Status(404)).await;
    jwks.serve(&[&r.jwk, &e.jwk, &o.jwk], &[]);
    env.idp(
        None,
        "https://jwks-idp.example",
        json!({"jwksUri": jwks.uri}),
    )
    .await;
    let ps = TestKey {
        encoding: EncodingKey::from_rsa_pem(
            &std::fs::read(root().join("tests/fixtures/keys/rsa-2048.pem")).unwrap(),
        )
        .unwrap(),
        jwk: Value::Null,
        alg: Algorithm::PS256,
    };
    for (i, (key, kid)) in [(&r, "r1"), (&ps, "r1"), (&e, "e1"), (&o, "o1")]
        .into_iter()
        .enumerate()
    {
        let assertion = common::idp::sign(
            key,
            Some(kid),
            &claims("https://jwks-idp.example", &format!("jwks-{i}")),
        );
        let (status, body) = env.exchange(&client, &assertion).await;
        assert_eq!(status, 200, "{:?}: {body}", key.alg);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "openid");
        assert!(body["access_token"].as_str().is_some_and(|t| t.len() >= 43));
        assert!(body["refresh_token"].is_string());
        assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0));
    }
    assert_eq!(jwks.hits(), 1);

    // An IdP registered with PEM certificates (as WSO2's console uploads them): one RSA,
    // one P-256, one Ed25519. No kid needed: the keys that fit the algorithm are tried.
    let rsa_pem = std::fs::read_to_string(root().join("tests/fixtures/keys/rsa-2048.pem")).unwrap();
    let rsa_pair =
        rcgen::KeyPair::from_pem_and_sign_algo(&rsa_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let ec_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    env.idp(
        None,
        "https://cert-idp.example",
        json!({"certificates": [certificate(&rsa_pair), certificate(&ec_pair), certificate(&ed_pair)]}),
    )
    .await;
    let keys = [
        (
            EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap(),
            Algorithm::RS256,
        ),
        (
            EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap(),
            Algorithm::PS256,
        ),
        (
            EncodingKey::from_ec_der(&ec_pair.serialize_der()),
            Algorithm::ES256,
        ),
        (
            EncodingKey::from_ed_der(&ed_pair.serialize_der()),
            Algorithm::EdDSA,
        ),
    ];
    for (i, (encoding, alg)) in keys.into_iter().enumerate() {
        let key = TestKey {
            encoding,
            jwk: Value::Null,
            alg,
        };
        let assertion = common::idp::sign(
            &key,
            None,
            &claims("https://cert-idp.example", &format!("cert-{i}")),
        );
        let (status, body) = env.exchange(&client, &assertion).await;
        assert_eq!(status, 200, "{alg:?}: {body}");
        assert!(body["refresh_token"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_has_its_invalid_grant_and_replays_lose() {
    let env = start(true).await;
    let client = env.client(None).await;
    let (key, other) = (rsa("rsa-2048", "k"), rsa("rsa-2048-b", "k"));
    let jwks = JwksServer::start(common::idp::Answer::Status(404)).await;
    jwks.serve(&[&key.jwk], &[]);
    let iss = "https://idp.example";
    env.idp(None, iss, json!({"jwksUri": jwks.uri})).await;
    let with = |changes: Value, jti: &str| {
        let mut c = claims(iss, jti);
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        common::idp::sign(&key, Some("k"), &c)
    };
    let now = now();
    let cases = [
        (
            with(json!({"iss": "https://unknown.example"}), "r1"),
            "no enabled identity provider",
        ),
        (with(json!({"sub": null}), "r2"), "no sub"),
        (
            with(json!({"aud": "https://elsewhere/token"}), "r3"),
            "alias",
        ),
        (with(json!({"aud": null}), "r4"), "aud is required"),
        (with(json!({"exp": null}), "r5"), "no exp"),
        (with(json!({"exp": now - 120}), "r6"), "expired"),
        (with(json!({"nbf": now + 120}), "r7"), "not valid yet"),
        (with(json!({"iat": now + 120}), "r8"), "future"),
        (with(json!({"iat": now - 31 * 60 - 60}), "r9"), "30 minutes"),
        (
            with(json!({"exp": now + 2 * 86_400}), "r10"),
            "max_assertion_lifetime_secs",
        ),
        (
            common::idp::sign(&other, Some("k"), &claims(iss, "r11")),
            "does not verify",
        ),
        (
            common::idp::sign(&key, Some("nope"), &claims(iss, "r12")),
            "kid",
        ),
        ("a.b.c".to_string(), "not a signed JWT"),
    ];
    for (assertion, rule) in &cases {
        let (status, body) = env.exchange(&client, assertion).await;
        invalid_grant(status, &body, rule);
        assert!(
            !body.to_string().contains(assertion.as_str()),
            "echoed: {body}"
        );
    }

    // A missing assertion is invalid_request, before the client is looked at.
    let (status, body) = env
        .token(
            None,
            &("nobody".into(), "x".into()),
            &[("grant_type", GRANT)],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // A client whose registration does not list the grant may not use it.
    let other_client = env
        .api
        .client(
            None,
            json!({"client_name": "cc", "grant_types": ["client_credentials"]}),
        )
        .await;
    let (status, body) = env
        .exchange(
            &(
                other_client["client_id"].as_str().unwrap().into(),
                other_client["client_secret"].as_str().unwrap().into(),
            ),
            &with(json!({}), "not-mine"),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );

    // Replay: the second use of one assertion loses.
    let once = with(json!({}), "once");
    assert_eq!(env.exchange(&client, &once).await.0, 200);
    let (status, body) = env.exchange(&client, &once).await;
    invalid_grant(status, &body, "already used");

    // The same jti from another IdP is another assertion.
    let second = rsa("rsa-2048-b", "k2");
    let jwks2 = JwksServer::start(common::idp::Answer::Status(404)).await;
    jwks2.serve(&[&second.jwk], &[]);
    env.idp(
        None,
        "https://second.example",
        json!({"jwksUri": jwks2.uri}),
    )
    .await;
    let same_jti = common::idp::sign(
        &second,
        Some("k2"),
        &claims("https://second.example", "once"),
    );
    assert_eq!(env.exchange(&client, &same_jti).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_uses_of_one_assertion_make_one_token_which_refreshes() {
    let env = std::sync::Arc::new(start(true).await);
    let client = env.client(None).await;
    let key = ed25519("k");
    let jwks = JwksServer::start(common::idp::Answer::Status(404)).await;
    jwks.serve(&[&key.jwk], &[]);
    env.idp(None, "https://idp.example", json!({"jwksUri": jwks.uri}))
        .await;
    let assertion = common::idp::sign(&key, Some("k"), &claims("https://idp.example", "race"));
    let tries = (0..50).map(|_| {
        let (env, client, assertion) = (env.clone(), client.clone(), assertion.clone());
        tokio::spawn(async move { env.exchange(&client, &assertion).await })
    });
    let results: Vec<(u16, Value)> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .all(|(s, b)| *s == 200 || b["error"] == "invalid_grant"));

    let refresh = winners[0]["refresh_token"].as_str().unwrap();
    let (status, body) = env
        .token(
            None,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string() && body["refresh_token"] != refresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_idps_other_tenants_and_a_disabled_listener_are_refused() {
    let env = start(true).await;
    let key = ec256("k");
    let jwks = JwksServer::start(common::idp::Answer::Status(404)).await;
    jwks.serve(&[&key.jwk], &[]);
    let iss = "https://idp.example";
    let id = env.idp(None, iss, json!({"jwksUri": jwks.uri})).await;
    let client = env.client(None).await;
    let discovery: Value = env
        .http
        .get(format!(
            "{}/.well-known/openid-configuration",
            env.server.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(discovery["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == GRANT));

    // The IdP of another tenant is unknown here, and this one is unknown there.
    let acme_client = env.client(Some("acme")).await;
    let acme_alias = "https://localhost:9443/t/acme/oauth2/token";
    let mut c = claims(iss, "t1");
    c["aud"] = acme_alias.into();
    let (status, body) = env
        .token(
            Some("acme"),
            &acme_client,
            &[
                ("grant_type", GRANT),
                ("assertion", &common::idp::sign(&key, Some("k"), &c)),
            ],
        )
        .await;
    invalid_grant(status, &body, "no enabled identity provider");

    // Disabled with a PUT of the whole record: refused by name.
    let response = env
        .http
        .put(format!(
            "{}/api/server/v1/identity-providers/{id}",
            env.server.url
        ))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&json!({"name": iss, "isEnabled": false, "certificate": {"jwksUri": jwks.uri}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, body) = env
        .exchange(
            &client,
            &common::idp::sign(&key, Some("k"), &claims(iss, "t2")),
        )
        .await;
    invalid_grant(status, &body, "no enabled identity provider");

    // With the listener disabled, the grant is gone from discovery and unsupported.
    let env = start(false).await;
    let discovery: Value = env
        .http
        .get(format!(
            "{}/.well-known/openid-configuration",
            env.server.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grants = discovery["grant_types_supported"].as_array().unwrap();
    assert!(!grants.iter().any(|g| g == GRANT), "{discovery}");
    let (status, body) = env
        .token(
            None,
            &("x".into(), "y".into()),
            &[("grant_type", GRANT), ("assertion", "a.b.c")],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}
