//! private_key_jwt end to end: the real binary with the bundled plugins in dropins (enabled
//! under WSO2's names with seed 004's properties), clients registered through DCR with a
//! loopback `jwks_uri` or inline `jwks`, and real signed client assertions sent as seed 004's
//! curl sends them.

mod common;
use common::now;

use common::api::{deployment, Api};
use common::idp::{ec256, ed25519, rsa, sign, Answer, JwksServer, TestKey};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const ENDPOINT: &str = "https://localhost:9443/oauth2/token";
const ALIAS: &str = "https://gateway.example/token";

/// Seed 004's listener (with `order`), the validator, and `extra` listeners.
fn identity(enabled: bool, order: u32, extra: &str) -> String {
    format!(
        r#"<Server>
  <EventListeners>
    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="org.wso2.carbon.identity.oauth2.token.handler.clientauth.jwt.PrivateKeyJWTClientAuthenticator"
                   orderId="{order}" enable="{enabled}">
      <Property name="preventTokenReuse">true</Property>
      <Property name="RejectBeforeInMinutes">100</Property>
      <Property name="TokenEndPointAlias">{ALIAS}</Property>
    </EventListener>
    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator"
                   orderId="10" enable="true"/>
{extra}
  </EventListeners>
  <CacheManager name="IdentityApplicationManagementCacheManager">
    <Cache name="PrivateKeyJWT" enable="true" timeout="10" capacity="5000" isDistributed="false"/>
  </CacheManager>
</Server>"#
    )
}

struct Env {
    _base: tempfile::TempDir,
    _server: Server,
    api: Api,
}

fn start_with(identity: &str, deployment_extra: &str) -> Env {
    let base = tempfile::tempdir().unwrap();
    bundled_plugins(&base.path().join("dropins"));
    let conf = conf_dir(base.path(), &deployment(deployment_extra), identity);
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server.url);
    Env {
        _base: base,
        _server: server,
        api,
    }
}

fn start() -> Env {
    start_with(&identity(true, 899, ""), "")
}

/// Registers a private_key_jwt client trusted with `keys` (`{"jwks_uri": …}` or
/// `{"jwks": …}`); its client_id.
async fn client(api: &Api, tenant: Option<&str>, keys: Value) -> String {
    let mut metadata = json!({"client_name": "svc", "token_endpoint_auth_method": "private_key_jwt",
                              "grant_types": ["client_credentials"]});
    for (k, v) in keys.as_object().unwrap() {
        metadata[k] = v.clone();
    }
    let body = api.client(tenant, metadata).await;
    assert!(body.get("client_secret").is_none(), "{body}");
    body["client_id"].as_str().unwrap().to_string()
}

fn claims(client_id: &str, jti: &str) -> Value {
    let now = now();
    json!({"iss": client_id, "sub": client_id, "aud": ENDPOINT, "exp": now + 300,
           "iat": now - 5, "jti": jti})
}

/// Seed 004's curl: client_credentials with the assertion, `scope=openid` and a stray
/// `redirect_uri`, no Basic header.
async fn token(api: &Api, tenant: Option<&str>, assertion: &str) -> (u16, Value) {
    api.token(
        tenant,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "openid"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
            (
                "redirect_uri",
                "http://localhost:8080/playground2/oauth2client",
            ),
        ],
    )
    .await
}

fn invalid_client(status: u16, body: &Value, rule: &str) {
    assert_eq!(status, 401, "{rule}: {body}");
    assert_eq!(body["error"], "invalid_client", "{rule}: {body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(rule), "{rule}: {description}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004s_flow_with_jwks_uri_and_inline_jwks_and_every_algorithm() {
    let env = start();
    let (r, e, o) = (rsa("rsa-2048", "r"), ec256("e"), ed25519("o"));
    let jwks = JwksServer::start(Answer::Status(404)).await;
    jwks.serve(&[&r.jwk, &e.jwk, &o.jwk], &[]);
    let by_uri = client(&env.api, None, json!({"jwks_uri": jwks.uri})).await;
    let inline = client(
        &env.api,
        None,
        json!({"jwks": {"keys": [r.jwk, e.jwk, o.jwk]}}),
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
    for client_id in [&by_uri, &inline] {
        for (i, (key, kid)) in [(&r, "r"), (&ps, "r"), (&e, "e"), (&o, "o")]
            .into_iter()
            .enumerate()
        {
            let assertion = sign(key, Some(kid), &claims(client_id, &format!("j{i}")));
            let (status, body) = token(&env.api, None, &assertion).await;
            assert_eq!(status, 200, "{:?}: {body}", key.alg);
            assert_eq!(body["token_type"], "Bearer");
            assert!(body.get("refresh_token").is_none(), "{body}");
        }
    }
    assert_eq!(jwks.hits(), 1);
    let discovery = env.api.discovery(None).await;
    assert!(discovery["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "private_key_jwt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_has_its_invalid_client_and_every_audience_form_works() {
    let env = start();
    let key = ec256("k");
    let client_id = client(&env.api, None, json!({"jwks": {"keys": [key.jwk]}})).await;
    let secret_client = env
        .api
        .client(
            None,
            json!({"client_name": "s", "grant_types": ["client_credentials"]}),
        )
        .await;
    let secret_id = secret_client["client_id"].as_str().unwrap();
    let with = |changes: Value, jti: &str| {
        let mut c = claims(&client_id, jti);
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        sign(&key, Some("k"), &c)
    };
    let now = now();
    let cases = [
        (with(json!({"sub": "someone"}), "a1"), "iss and sub"),
        (
            with(json!({"iss": "nobody", "sub": "nobody"}), "a2"),
            "no client",
        ),
        (
            with(json!({"iss": secret_id, "sub": secret_id}), "a3"),
            "registered for client_secret_basic",
        ),
        (
            with(json!({"aud": "https://elsewhere/token"}), "a4"),
            "aud must contain",
        ),
        (with(json!({"exp": null}), "a5"), "no exp"),
        (with(json!({"exp": now - 120}), "a6"), "expired"),
        (with(json!({"nbf": now + 120}), "a7"), "not valid yet"),
        (
            with(json!({"iat": now - 101 * 60 - 60}), "a8"),
            "RejectBeforeInMinutes",
        ),
        (with(json!({"jti": null}), "a9"), "no jti"),
        (
            sign(&ec256("k"), Some("k"), &claims(&client_id, "a10")),
            "does not verify",
        ),
        ("x.y.z".to_string(), "not a signed JWT"),
    ];
    for (assertion, rule) in &cases {
        let (status, body) = token(&env.api, None, assertion).await;
        invalid_client(status, &body, rule);
    }
    // Accepted audiences: the token endpoint URL (= the issuer), the alias, in arrays too.
    for (i, aud) in [
        json!(ENDPOINT),
        json!(ALIAS),
        json!(["x", ENDPOINT]),
        json!([ALIAS]),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = token(
            &env.api,
            None,
            &with(json!({"aud": aud}), &format!("ok{i}")),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // Replay, a secret and an assertion at once, and a client_id that is not the assertion's.
    let once = with(json!({}), "once");
    assert_eq!(token(&env.api, None, &once).await.0, 200);
    let (status, body) = token(&env.api, None, &once).await;
    invalid_client(status, &body, "already used");
    let both = env
        .api
        .token(
            None,
            Some((&client_id, "secret")),
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &with(json!({}), "both")),
            ],
        )
        .await;
    assert_eq!(
        (both.0, both.1["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let mismatch = env
        .api
        .token(
            None,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "someone-else"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &with(json!({}), "mismatch")),
            ],
        )
        .await;
    invalid_client(mismatch.0, &mismatch.1, "client_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_uses_of_one_assertion_make_one_token() {
    let env = start();
    let key = ed25519("k");
    let client_id = client(&env.api, None, json!({"jwks": {"keys": [key.jwk]}})).await;
    let assertion = sign(&key, Some("k"), &claims(&client_id, "race"));
    let tries = (0..50).map(|_| {
        let (api, assertion) = (env.api.clone(), assertion.clone());
        tokio::spawn(async move { token(&api, None, &assertion).await })
    });
    let results: Vec<(u16, Value)> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|(s, b)| *s == 200 || b["error"] == "invalid_client"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_and_its_order_id_decide() {
    // Disabled: gone from discovery, and an assertion finds no authenticator.
    let env = start_with(&identity(false, 899, ""), "");
    let discovery = env.api.discovery(None).await;
    assert!(!discovery["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "private_key_jwt"));
    let (status, body) = token(&env.api, None, "a.b.c").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    drop(env);

    // Another authenticator that takes the same requests: the lower orderId decides.
    let competitor = |order: u32| {
        format!(
            r#"    <EventListener name="test-assertion-auth" orderId="{order}" enable="true"/>"#
        )
    };
    for (ours, theirs, winner) in [
        (899, 50, "test-assertion-auth refuses"),
        (20, 950, "not a signed JWT"),
    ] {
        let base = tempfile::tempdir().unwrap();
        let dropins = base.path().join("dropins");
        bundled_plugins(&dropins);
        build_plugin(
            "tests/fixtures/test-plugin/Cargo.toml",
            "tollgate_test_plugin",
            &["assertion-auth"],
            false,
            &dropins,
            "libtollgate_test_plugin.so",
        );
        let conf = conf_dir(
            base.path(),
            &deployment(""),
            &identity(true, ours, &competitor(theirs)),
        );
        let server = Server::start(&conf, &[]);
        let api = Api::new(&server.url);
        let (status, body) = token(&api, None, "x.y.z").await;
        assert_eq!(status, 401, "{body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.contains(winner),
            "{ours} vs {theirs}: {description}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_key_jwt_client_uses_the_jwt_bearer_and_refresh_grants_too() {
    // Without the authenticator's cache, so that every replay is the host's to refuse.
    let identity = identity(
        true,
        899,
        r#"    <EventListener name="org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler" orderId="100" enable="true"/>"#,
    )
    .replace(
        r#"<Cache name="PrivateKeyJWT" enable="true""#,
        r#"<Cache name="PrivateKeyJWT" enable="false""#,
    );
    let env = start_with(&identity, "");
    let (client_key, idp_key) = (ec256("c"), ed25519("i"));
    let jwks = JwksServer::start(Answer::Status(404)).await;
    jwks.serve(&[&idp_key.jwk], &[]);
    env.api
        .idp(None, "https://idp.example", json!({"jwksUri": jwks.uri}))
        .await;
    let body = env
        .api
        .client(
            None,
            json!({"client_name": "svc", "token_endpoint_auth_method": "private_key_jwt",
                   "jwks": {"keys": [client_key.jwk]},
                   "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token"]}),
        )
        .await;
    let client_id = body["client_id"].as_str().unwrap();
    let now = now();
    let idp_assertion = sign(
        &idp_key,
        Some("i"),
        &json!({"iss": "https://idp.example", "sub": "alice", "aud": ENDPOINT,
                "exp": now + 300, "jti": "bearer-1"}),
    );
    let (status, body) = env
        .api
        .token(
            None,
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &idp_assertion),
                ("client_assertion_type", ASSERTION_TYPE),
                (
                    "client_assertion",
                    &sign(&client_key, Some("c"), &claims(client_id, "c1")),
                ),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap();
    let (status, body) = env
        .api
        .token(
            None,
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_assertion_type", ASSERTION_TYPE),
                (
                    "client_assertion",
                    &sign(&client_key, Some("c"), &claims(client_id, "c2")),
                ),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rotated = body["refresh_token"].as_str().unwrap().to_string();
    let refresh_with = |token: String, jti: &'static str| {
        let assertion = sign(&client_key, Some("c"), &claims(client_id, jti));
        let api = &env.api;
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion.as_str()),
            ];
            api.token(None, None, &form).await
        }
    };
    // A replayed client assertion never reaches the grant: presenting the rotated-away
    // refresh token with it would revoke the family (reuse detection) if it did.
    let (status, body) = refresh_with(refresh.to_string(), "c2").await;
    invalid_client(status, &body, "already used");
    let (status, body) = refresh_with(rotated, "c4").await;
    assert_eq!(status, 200, "the family is intact: {body}");

    // client_credentials is not among its grants; the assertion is spent all the same, and
    // replaying one is answered first.
    let c3 = sign(&client_key, Some("c"), &claims(client_id, "c3"));
    let (status, body) = token(&env.api, None, &c3).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    let (status, body) = token(&env.api, None, &c3).await;
    invalid_client(status, &body, "already used");
    let (status, body) = refresh_with("no-such-token".into(), "c3").await;
    invalid_client(status, &body, "already used");
}
