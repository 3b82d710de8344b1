//! The token service end to end: the real binary over loopback HTTP, clients registered through
//! DCR, every RFC 6749 error path with its exact code and status, introspection, revocation,
//! refresh rotation, JWT access tokens, tenants, restarts — and nothing secret at rest or in
//! the logs.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ADMIN: (&str, &str) = ("admin", "admin-pw");
const TEST_GRANT: &str = "urn:example:test";

/// A base dir whose server runs without TLS on a free port, with the super admin password set,
/// the test plugin in dropins mapped to `urn:example:test`, and the given extra listeners.
fn setup(extra_listeners: &str, deployment_extra: &str) -> (tempfile::TempDir, PathBuf) {
    let base = tempfile::tempdir().expect("tempdir");
    let dropins = base.path().join("dropins");
    std::fs::create_dir_all(&dropins).expect("dropins");
    test_plugin(&dropins);
    let identity = format!(
        r#"<Server>
  <OAuth><SupportedGrantTypes><SupportedGrantType>
    <GrantTypeName>{TEST_GRANT}</GrantTypeName>
    <GrantTypeHandlerImplClass>test-grant</GrantTypeHandlerImplClass>
  </SupportedGrantType></SupportedGrantTypes></OAuth>
  <EventListeners>
    <EventListener name="test-grant" orderId="10" enable="true"/>
{extra_listeners}
  </EventListeners>
</Server>"#
    );
    let deployment = format!(
        "[server]\nbind = \"127.0.0.1:0\"\n[server.tls]\nenabled = false\n[super_admin]\npassword = \"{}\"\n{deployment_extra}",
        ADMIN.1
    );
    let conf = conf_dir(base.path(), &deployment, &identity);
    (base, conf)
}

struct Api {
    http: reqwest::Client,
    url: String,
}

fn prefix(tenant: Option<&str>) -> String {
    tenant.map(|t| format!("/t/{t}")).unwrap_or_default()
}

impl Api {
    fn new(server: &Server) -> Api {
        Api {
            http: reqwest::Client::new(),
            url: server.url.clone(),
        }
    }

    async fn json(response: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body, headers)
    }

    /// Registers a client in `tenant`; returns the 201 body.
    async fn register(&self, tenant: Option<&str>, metadata: Value) -> Value {
        let (status, body) = self.register_raw(tenant, metadata).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn register_raw(&self, tenant: Option<&str>, metadata: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!(
                "{}{}/api/identity/oauth2/dcr/v1.1/register",
                self.url,
                prefix(tenant)
            ))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&metadata)
            .send()
            .await
            .expect("register");
        let (s, b, _) = Self::json(response).await;
        (s, b)
    }

    /// POSTs a form to `path` of `tenant`, with Basic credentials if given.
    async fn post(
        &self,
        tenant: Option<&str>,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.post_raw(tenant, path, body, basic, &[]).await
    }

    async fn post_raw(
        &self,
        tenant: Option<&str>,
        path: &str,
        body: String,
        basic: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .http
            .post(format!("{}{}{path}", self.url, prefix(tenant)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::json(request.send().await.expect("post")).await
    }

    async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        self.post(None, "/oauth2/token", form, basic).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("get");
        let (s, b, _) = Self::json(response).await;
        (s, b)
    }

    async fn introspect(&self, tenant: Option<&str>, token: &str) -> Value {
        let (status, body, _) = self
            .post(
                tenant,
                "/oauth2/introspect",
                &[("token", token)],
                Some(ADMIN),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

fn secret_client(method: &str, grants: &[&str], scope: Option<&str>) -> Value {
    let mut metadata = json!({
        "client_name": "test client",
        "grant_types": grants,
        "token_endpoint_auth_method": method,
    });
    if let Some(scope) = scope {
        metadata["scope"] = json!(scope);
    }
    metadata
}

fn credentials(client: &Value) -> (String, String) {
    (
        client["client_id"].as_str().expect("client_id").to_string(),
        client["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_string(),
    )
}

fn assert_error(result: &(u16, Value, reqwest::header::HeaderMap), status: u16, error: &str) {
    assert_eq!(
        (result.0, result.1["error"].as_str()),
        (status, Some(error)),
        "{}",
        result.1
    );
    assert!(result.1["error_description"].is_string(), "{}", result.1);
    assert_eq!(
        result
            .2
            .get("cache-control")
            .map(|v| v.to_str().unwrap_or("")),
        Some("no-store")
    );
    assert_eq!(
        result.2.get("pragma").map(|v| v.to_str().unwrap_or("")),
        Some("no-cache")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_with_basic_and_post_and_every_error() {
    let (_base, conf) = setup("", "");
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server);
    let basic_client = api
        .register(
            None,
            secret_client(
                "client_secret_basic",
                &["client_credentials"],
                Some("read write"),
            ),
        )
        .await;
    let (id, secret) = credentials(&basic_client);
    assert_eq!(basic_client["client_secret_expires_at"], 0);

    // Basic, with and without scope.
    let ok = api
        .token(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(ok.1["token_type"], "Bearer");
    assert_eq!(ok.1["expires_in"], 3600);
    assert!(
        ok.1.get("scope").is_none(),
        "no scope requested, none granted: {}",
        ok.1
    );
    assert!(
        ok.1.get("refresh_token").is_none(),
        "client_credentials issues no refresh token"
    );
    assert!(ok.1["access_token"].as_str().is_some_and(|t| t.len() >= 43));
    assert_eq!(
        ok.2.get("cache-control").map(|v| v.to_str().unwrap_or("")),
        Some("no-store")
    );
    assert_eq!(
        ok.2.get("pragma").map(|v| v.to_str().unwrap_or("")),
        Some("no-cache")
    );
    let scoped = api
        .token(
            &[("grant_type", "client_credentials"), ("scope", "read")],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!((scoped.0, scoped.1["scope"].as_str()), (200, Some("read")));

    // client_secret_post is accepted for a secret client too (WSO2 treats them alike).
    let post = api
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
    assert_eq!(post.0, 200, "{}", post.1);

    // Errors, each with its exact code and status.
    let wrong = api
        .token(&[("grant_type", "client_credentials")], Some((&id, "nope")))
        .await;
    assert_error(&wrong, 401, "invalid_client");
    assert_eq!(
        wrong
            .2
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("")),
        Some("Basic realm=\"tollgate\"")
    );
    let wrong_post = api
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "nope"),
            ],
            None,
        )
        .await;
    assert_error(&wrong_post, 401, "invalid_client");
    assert!(
        wrong_post.2.get("www-authenticate").is_none(),
        "no Basic sent, no challenge"
    );
    assert_error(
        &api.token(
            &[("grant_type", "client_credentials")],
            Some(("unknown", "x")),
        )
        .await,
        401,
        "invalid_client",
    );
    assert_error(
        &api.token(&[("grant_type", "client_credentials")], None)
            .await,
        401,
        "invalid_client",
    );
    assert_error(
        &api.token(&[("scope", "read")], Some((&id, &secret))).await,
        400,
        "invalid_request",
    );
    assert_error(
        &api.post_raw(
            None,
            "/oauth2/token",
            "grant_type=client_credentials&grant_type=client_credentials".into(),
            Some((&id, &secret)),
            &[],
        )
        .await,
        400,
        "invalid_request",
    );
    assert_error(
        &api.token(&[("grant_type", "password")], Some((&id, &secret)))
            .await,
        400,
        "unsupported_grant_type",
    );
    assert_error(
        &api.token(
            &[("grant_type", TEST_GRANT), ("assertion", "alice")],
            Some((&id, &secret)),
        )
        .await,
        400,
        "unauthorized_client",
    );
    assert_error(
        &api.token(
            &[("grant_type", "client_credentials"), ("scope", "admin")],
            Some((&id, &secret)),
        )
        .await,
        400,
        "invalid_scope",
    );
    // A missing grant parameter is invalid_request before client authentication.
    assert_error(
        &api.token(&[("grant_type", TEST_GRANT)], Some(("nobody", "nothing")))
            .await,
        400,
        "invalid_request",
    );
    // Two client authentication methods at once.
    assert_error(
        &api.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            Some((&id, &secret)),
        )
        .await,
        400,
        "invalid_request",
    );
    // Not a form.
    let json_body = api
        .http
        .post(format!("{}/oauth2/token", api.url))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("post");
    assert_error(&Api::json(json_body).await, 400, "invalid_request");
    // ?tenantDomain= disagreeing with the path.
    assert_error(
        &api.post(
            Some("acme"),
            "/oauth2/token?tenantDomain=other",
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await,
        400,
        "invalid_request",
    );
    // ?tenantDomain=carbon.super on the bare path means the same tenant.
    let same = api
        .post(
            None,
            "/oauth2/token?tenantDomain=carbon.super",
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(same.0, 200, "{}", same.1);
    // A body over the limit.
    let huge = format!("grant_type=client_credentials&pad={}", "x".repeat(70_000));
    let too_large = api
        .post_raw(None, "/oauth2/token", huge, Some((&id, &secret)), &[])
        .await;
    assert_eq!(
        (too_large.0, too_large.1["error"].as_str()),
        (413, Some("invalid_request"))
    );

    // A client registered for post only may not... (post and basic are one family); a
    // client registered for client_credentials only gets unauthorized_client for refresh.
    assert_error(
        &api.token(
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
            Some((&id, &secret)),
        )
        .await,
        400,
        "unauthorized_client",
    );

    // Metrics count grants by type and outcome.
    let metrics = reqwest::get(format!("{}/metrics", api.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"tollgate_grants_total{grant_type="client_credentials",outcome="ok"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tollgate_grants_total{grant_type="client_credentials",outcome="invalid_client"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_grant_latency_seconds_bucket"),
        "{metrics}"
    );
    // And the store's group commits: the grants above were committed.
    let committed = metrics
        .lines()
        .find_map(|line| line.strip_prefix("tollgate_store_commit_calls_sum "))
        .and_then(|sum| sum.parse::<f64>().ok());
    assert!(committed.is_some_and(|calls| calls >= 1.0), "{metrics}");
    server.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_revocation_and_refresh_rotation() {
    let (_base, conf) = setup("", "");
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server);
    let grants = ["client_credentials", "refresh_token", TEST_GRANT];
    let one = api
        .register(None, secret_client("client_secret_basic", &grants, None))
        .await;
    let other = api
        .register(None, secret_client("client_secret_basic", &grants, None))
        .await;
    let (id, secret) = credentials(&one);
    let (other_id, other_secret) = credentials(&other);
    let me = Some((id.as_str(), secret.as_str()));
    let them = Some((other_id.as_str(), other_secret.as_str()));

    let first = api
        .token(
            &[
                ("grant_type", TEST_GRANT),
                ("assertion", "alice"),
                ("refresh", "yes"),
                ("scope", "a b"),
            ],
            me,
        )
        .await;
    assert_eq!(first.0, 200, "{}", first.1);
    let access = first.1["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    let refresh = first.1["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();

    let info = api.introspect(None, &access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["client_id"], id.as_str());
    assert_eq!(info["scope"], "a b");
    assert!(
        info["exp"].as_i64().is_some() && info["iat"].as_i64().is_some(),
        "{info}"
    );
    assert_eq!(
        api.introspect(None, "not-a-token").await,
        json!({"active": false})
    );
    // Introspection by a client of the tenant works too; by nobody it does not.
    let by_client = api
        .post(None, "/oauth2/introspect", &[("token", &access)], me)
        .await;
    assert_eq!((by_client.0, &by_client.1["active"]), (200, &json!(true)));
    assert_error(
        &api.post(None, "/oauth2/introspect", &[("token", &access)], None)
            .await,
        401,
        "invalid_client",
    );
    assert_error(
        &api.post(None, "/oauth2/introspect", &[], Some(ADMIN)).await,
        400,
        "invalid_request",
    );

    // Rotation: the refresh token works once; the new pair works; scope may narrow, not widen.
    assert_error(
        &api.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "a c"),
            ],
            me,
        )
        .await,
        400,
        "invalid_scope",
    );
    let rotated = api
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "a"),
            ],
            me,
        )
        .await;
    assert_eq!(rotated.0, 200, "{}", rotated.1);
    assert_eq!(rotated.1["scope"], "a");
    let access2 = rotated.1["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    let refresh2 = rotated.1["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    assert_ne!(refresh2, refresh);
    assert_eq!(api.introspect(None, &access2).await["active"], true);
    // Another client cannot redeem it.
    assert_error(
        &api.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh2),
            ],
            them,
        )
        .await,
        400,
        "invalid_grant",
    );
    // Reuse of the old one: invalid_grant, and the whole family dies.
    assert_error(
        &api.token(
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            me,
        )
        .await,
        400,
        "invalid_grant",
    );
    assert_eq!(api.introspect(None, &access2).await["active"], false);
    assert_error(
        &api.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh2),
            ],
            me,
        )
        .await,
        400,
        "invalid_grant",
    );

    // Revocation: another client's revoke is a 200 that changes nothing.
    let fresh = api
        .token(
            &[
                ("grant_type", TEST_GRANT),
                ("assertion", "bob"),
                ("refresh", "yes"),
            ],
            me,
        )
        .await;
    let access3 = fresh.1["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    let refresh3 = fresh.1["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let (status, _, _) = api
        .post(None, "/oauth2/revoke", &[("token", &access3)], them)
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.introspect(None, &access3).await["active"], true);
    let (status, _, _) = api
        .post(None, "/oauth2/revoke", &[("token", "unknown")], me)
        .await;
    assert_eq!(status, 200);
    assert_error(
        &api.post(None, "/oauth2/revoke", &[("token", &access3)], None)
            .await,
        401,
        "invalid_client",
    );
    // Revoking the refresh token kills its access token.
    let (status, _, _) = api
        .post(
            None,
            "/oauth2/revoke",
            &[("token", &refresh3), ("token_type_hint", "refresh_token")],
            me,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.introspect(None, &access3).await["active"], false);
    assert_eq!(api.introspect(None, &refresh3).await["active"], false);
    // Revoking an access token.
    let cc = api.token(&[("grant_type", "client_credentials")], me).await;
    let access4 = cc.1["access_token"].as_str().expect("access").to_string();
    assert_eq!(
        api.post(None, "/oauth2/revoke", &[("token", &access4)], me)
            .await
            .0,
        200
    );
    assert_eq!(api.introspect(None, &access4).await["active"], false);
    server.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_access_tokens_verify_against_the_published_keys() {
    for alg in ["RS256", "ES256", "EdDSA", "PS256"] {
        let (_base, conf) = setup("", &format!("[oauth.token]\nsigning_alg = \"{alg}\"\n"));
        let server = Server::start(&conf, &[]);
        let api = Api::new(&server);
        let mut metadata = secret_client("client_secret_basic", &["client_credentials"], None);
        metadata["access_token_format"] = json!("jwt");
        let client = api.register(Some("acme"), metadata).await;
        let (id, secret) = credentials(&client);
        let issued = api
            .post(
                Some("acme"),
                "/oauth2/token",
                &[("grant_type", "client_credentials"), ("scope", "x")],
                Some((&id, &secret)),
            )
            .await;
        assert_eq!(issued.0, 200, "{}", issued.1);
        let jwt = issued.1["access_token"].as_str().expect("jwt");
        let header = jsonwebtoken::decode_header(jwt).expect("a JWT");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let (_, jwks) = api.get("/t/acme/oauth2/jwks").await;
        let kid = header.kid.clone().expect("kid");
        let jwk_value = jwks["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
            .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"))
            .clone();
        assert_eq!(jwk_value["use"], "sig");
        assert_eq!(jwk_value["alg"], alg);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk_value).expect("jwk");
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("key");
        let (_, discovery) = api.get("/t/acme/.well-known/openid-configuration").await;
        let issuer = discovery["issuer"].as_str().expect("issuer");
        assert_eq!(issuer, "https://localhost:9443/t/acme/oauth2/token");
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[&id]);
        let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
            .expect("verifies")
            .claims;
        assert_eq!(claims["sub"], id.as_str());
        assert_eq!(claims["client_id"], id.as_str());
        assert_eq!(claims["scope"], "x");
        assert!(claims["jti"].is_string());
        // The JWT is introspectable like an opaque token.
        assert_eq!(api.introspect(Some("acme"), jwt).await["active"], true);
        // Not in another tenant.
        assert_eq!(api.introspect(None, jwt).await["active"], false);
        server.terminate();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_lists_what_is_active_and_tenants_are_isolated() {
    let (_base, conf) = setup("", "");
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server);
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/oauth2/token/.well-known/openid-configuration",
    ] {
        let (status, d) = api.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(d["issuer"], "https://localhost:9443/oauth2/token");
        assert_eq!(d["token_endpoint"], "https://localhost:9443/oauth2/token");
        assert_eq!(d["jwks_uri"], "https://localhost:9443/oauth2/jwks");
        let mut grants: Vec<String> =
            serde_json::from_value(d["grant_types_supported"].clone()).expect("list");
        grants.sort();
        assert_eq!(
            grants,
            vec!["client_credentials", "refresh_token", TEST_GRANT]
        );
        let mut methods: Vec<String> =
            serde_json::from_value(d["token_endpoint_auth_methods_supported"].clone())
                .expect("list");
        methods.sort();
        assert_eq!(methods, vec!["client_secret_basic", "client_secret_post"]);
    }
    let (_, d) = api.get("/t/acme/.well-known/openid-configuration").await;
    assert_eq!(d["issuer"], "https://localhost:9443/t/acme/oauth2/token");
    assert_eq!(d["jwks_uri"], "https://localhost:9443/t/acme/oauth2/jwks");

    // A client of acme is unknown in carbon.super and in beta, and the other way round.
    let acme = api
        .register(
            Some("acme"),
            secret_client("client_secret_basic", &["client_credentials"], None),
        )
        .await;
    let (id, secret) = credentials(&acme);
    let form = [("grant_type", "client_credentials")];
    assert_eq!(
        api.post(Some("acme"), "/oauth2/token", &form, Some((&id, &secret)))
            .await
            .0,
        200
    );
    assert_error(
        &api.post(None, "/oauth2/token", &form, Some((&id, &secret)))
            .await,
        401,
        "invalid_client",
    );
    assert_error(
        &api.post(Some("beta"), "/oauth2/token", &form, Some((&id, &secret)))
            .await,
        401,
        "invalid_client",
    );
    // ?tenantDomain= reaches acme from the bare path.
    assert_eq!(
        api.post(
            None,
            "/oauth2/token?tenantDomain=acme",
            &form,
            Some((&id, &secret))
        )
        .await
        .0,
        200
    );
    let get_other = api
        .http
        .get(format!(
            "{}/t/beta/api/identity/oauth2/dcr/v1.1/register/{id}",
            api.url
        ))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("get");
    assert_eq!(get_other.status().as_u16(), 404);
    // IdPs too.
    let idp = json!({"name": "https://idp.example.com", "certificate": {"jwksUri": "https://idp.example.com/jwks"}});
    let created = api
        .http
        .post(format!(
            "{}/t/acme/api/server/v1/identity-providers",
            api.url
        ))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&idp)
        .send()
        .await
        .expect("create idp");
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = created.json().await.expect("json");
    assert_eq!(
        created["alias"],
        "https://localhost:9443/t/acme/oauth2/token"
    );
    let idp_id = created["id"].as_str().expect("id");
    for (tenant, expected) in [("acme", 200), ("beta", 404)] {
        let got = api
            .http
            .get(format!(
                "{}/t/{tenant}/api/server/v1/identity-providers/{idp_id}",
                api.url
            ))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .expect("get idp");
        assert_eq!(got.status().as_u16(), expected, "{tenant}");
    }
    // The admin API needs the super admin.
    let anonymous = api
        .http
        .post(format!("{}/api/identity/oauth2/dcr/v1.1/register", api.url))
        .json(&secret_client(
            "client_secret_basic",
            &["client_credentials"],
            None,
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(anonymous.headers().get("www-authenticate").is_some());
    server.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_plugin_authenticates_over_http_and_disabling_it_removes_it() {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(b"the-api-key"));
    let listener = |enable: &str| {
        format!(
            r#"    <EventListener name="com.example.tollgate.ApiKeyAuthenticator" orderId="5" enable="{enable}">
      <Property name="ApiKeys">svc-a={hash}</Property>
    </EventListener>"#
        )
    };
    let (base, conf) = setup(&listener("true"), "");
    api_key_plugin(&base.path().join("dropins"));
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server);
    let (_, d) = api.get("/.well-known/openid-configuration").await;
    assert!(
        d["token_endpoint_auth_methods_supported"]
            .as_array()
            .expect("list")
            .contains(&json!("api_key")),
        "{d}"
    );
    let client = api
        .register(None, json!({"client_name": "svc", "ext_param_client_id": "svc-a", "token_endpoint_auth_method": "api_key"}))
        .await;
    assert_eq!(client["client_id"], "svc-a");
    assert!(
        client.get("client_secret").is_none(),
        "no secret for an api_key client: {client}"
    );
    let form = "grant_type=client_credentials".to_string();
    let ok = api
        .post_raw(
            None,
            "/oauth2/token",
            form.clone(),
            None,
            &[("x-api-key", "the-api-key")],
        )
        .await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(
        api.introspect(None, ok.1["access_token"].as_str().expect("token"))
            .await["client_id"],
        "svc-a"
    );
    assert_error(
        &api.post_raw(
            None,
            "/oauth2/token",
            form.clone(),
            None,
            &[("x-api-key", "wrong")],
        )
        .await,
        401,
        "invalid_client",
    );
    server.terminate();

    std::fs::write(
        conf.join("identity.xml"),
        std::fs::read_to_string(conf.join("identity.xml"))
            .expect("read")
            .replace(r#"enable="true">"#, r#"enable="false">"#),
    )
    .expect("write");
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server);
    let (_, d) = api.get("/.well-known/openid-configuration").await;
    assert!(
        !d["token_endpoint_auth_methods_supported"]
            .as_array()
            .expect("list")
            .contains(&json!("api_key")),
        "{d}"
    );
    assert_error(
        &api.post_raw(
            None,
            "/oauth2/token",
            form,
            None,
            &[("x-api-key", "the-api-key")],
        )
        .await,
        401,
        "invalid_client",
    );
    server.terminate();
}

/// Runs `tollgate serve` with stderr captured to a file (for the log grep).
fn start_logging(conf: &Path, log: &Path) -> Server {
    let stderr = std::fs::File::create(log).expect("log file");
    let mut child = Command::new(tollgate())
        .args(["serve", "--conf"])
        .arg(conf)
        .env("TOLLGATE_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("starts");
    Server::attach(&mut child)
        .map(|url| Server { child, url })
        .expect("ready")
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_keep_everything_and_nothing_secret_is_at_rest_or_in_logs() {
    let (base, conf) = setup("", "");
    let log = base.path().join("server.log");
    let server = start_logging(&conf, &log);
    let api = Api::new(&server);
    let mut metadata = secret_client(
        "client_secret_basic",
        &["client_credentials", "refresh_token", TEST_GRANT],
        None,
    );
    metadata["access_token_format"] = json!("jwt");
    let client = api.register(None, metadata).await;
    let (id, secret) = credentials(&client);
    let me = Some((id.as_str(), secret.as_str()));
    let issued = api
        .token(
            &[
                ("grant_type", TEST_GRANT),
                ("assertion", "alice"),
                ("refresh", "yes"),
            ],
            me,
        )
        .await;
    assert_eq!(issued.0, 200, "{}", issued.1);
    let live = issued.1["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    let refresh = issued.1["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let doomed = api
        .token(&[("grant_type", "client_credentials")], me)
        .await
        .1["access_token"]
        .as_str()
        .expect("t")
        .to_string();
    assert_eq!(
        api.post(None, "/oauth2/revoke", &[("token", &doomed)], me)
            .await
            .0,
        200
    );
    let idp = api
        .http
        .post(format!("{}/api/server/v1/identity-providers", api.url))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&json!({"name": "https://idp.example.com", "certificate": {"jwksUri": "https://idp.example.com/jwks"}}))
        .send()
        .await
        .expect("idp");
    assert_eq!(idp.status().as_u16(), 201);
    let idp: Value = idp.json().await.expect("json");
    let (_, jwks_before) = api.get("/oauth2/jwks").await;
    server.terminate();

    let server = start_logging(&conf, &base.path().join("server2.log"));
    let api = Api::new(&server);
    assert_eq!(api.introspect(None, &live).await["active"], true);
    assert_eq!(api.introspect(None, &doomed).await["active"], false);
    assert_eq!(
        api.token(&[("grant_type", "client_credentials")], me)
            .await
            .0,
        200
    );
    let (_, jwks_after) = api.get("/oauth2/jwks").await;
    assert_eq!(jwks_before, jwks_after);
    let got = api
        .http
        .get(format!(
            "{}/api/server/v1/identity-providers/{}",
            api.url,
            idp["id"].as_str().expect("id")
        ))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("get");
    assert_eq!(got.status().as_u16(), 200);
    let rotated = api
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            me,
        )
        .await;
    assert_eq!(rotated.0, 200, "{}", rotated.1);
    server.terminate();

    // Nothing secret in clear: not in the database files, not in the logs.
    let mut at_rest = Vec::new();
    for entry in std::fs::read_dir(base.path().join("data")).expect("data dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tollgate.db"))
        {
            at_rest.extend(std::fs::read(&path).expect("read"));
        }
    }
    let mut logs = std::fs::read(&log).expect("log");
    logs.extend(std::fs::read(base.path().join("server2.log")).expect("log"));
    assert!(!logs.is_empty());
    for (what, value) in [
        ("client secret", &secret),
        ("access token", &live),
        ("refresh token", &refresh),
        ("revoked token", &doomed),
    ] {
        let needle = value.as_bytes();
        assert!(
            !at_rest.windows(needle.len()).any(|w| w == needle),
            "{what} stored in clear"
        );
        assert!(
            !logs.windows(needle.len()).any(|w| w == needle),
            "{what} logged"
        );
    }
}
