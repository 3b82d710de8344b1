//! docs/from-wso2.md says WSO2's token requests work against Tollgate unchanged: here they are,
//! byte for byte as WSO2's documentation writes them (only `<jwt_assertion>`, `<JWT>` and the
//! credentials filled in), against a server on the shipped `conf/identity.xml`.

use super::common::api::{deployment, Api};
use super::common::idp::{rsa, sign, Answer, JwksServer};
use super::common::{bundled_plugins, conf_dir, root, Server};
use serde_json::{json, Value};

/// The default base URL's token endpoint: the IdPs' alias and the clients' audience.
const TOKEN_ENDPOINT: &str = "https://localhost:9443/oauth2/token";

/// POSTs `body` to the token endpoint with `content_type` and optional Basic credentials.
async fn post(
    api: &Api,
    query: &str,
    content_type: &str,
    basic: Option<(&str, &str)>,
    body: String,
) -> (u16, Value) {
    let mut request = api
        .http
        .post(format!("{}/oauth2/token{query}", api.url))
        .header("content-type", content_type)
        .body(body);
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn claims(iss: &str, sub: &str, jti: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    json!({"iss": iss, "sub": sub, "aud": TOKEN_ENDPOINT, "jti": jti, "iat": now, "exp": now + 300})
}

#[tokio::test(flavor = "multi_thread")]
async fn wso2_token_requests_work_unchanged() {
    let base = tempfile::tempdir().expect("temp dir");
    bundled_plugins(&base.path().join("dropins"));
    let identity = std::fs::read_to_string(root().join("conf/identity.xml")).expect("identity.xml");
    let conf = conf_dir(base.path(), &deployment(""), &identity);
    let server = Server::start(&conf, &[]);
    let api = Api::new(&server.url);

    let idp_key = rsa("rsa-2048", "idp-1");
    let jwks = JwksServer::start(Answer::Status(503)).await;
    jwks.serve(&[&idp_key.jwk], &[]);
    // WSO2's console: Identity Provider Name "jwtIDP", Alias the token endpoint URL.
    let (status, _) = api
        .admin(
            reqwest::Method::POST,
            Some("acme"),
            "/api/server/v1/identity-providers",
            json!({"name": "jwtIDP", "alias": TOKEN_ENDPOINT, "certificate": {"jwksUri": jwks.uri}}),
        )
        .await;
    assert_eq!(status, 201);
    let app = api
        .client(Some("acme"), json!({"client_name": "app", "grant_types": ["urn:ietf:params:oauth:grant-type:jwt-bearer"]}))
        .await;
    let (id, secret) = (
        app["client_id"].as_str().expect("id"),
        app["client_secret"].as_str().expect("secret"),
    );

    // WSO2 API Manager, "Using the JWT grant", in a tenant via ?tenantDomain=.
    let jwt = sign(
        &idp_key,
        Some("idp-1"),
        &claims("jwtIDP", "admin", "Token56756"),
    );
    let body = "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>"
        .replace("<JWT>", &jwt);
    let (status, answer) = post(
        &api,
        "?tenantDomain=acme",
        "application/x-www-form-urlencoded",
        Some((id, secret)),
        body,
    )
    .await;
    assert_eq!(status, 200, "{}", answer["error_description"]);
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer["refresh_token"].is_string());

    // WSO2 IS, "Private Key JWT Client Authentication", the client credentials example.
    let client_key = rsa("rsa-2048-b", "today-1");
    api.client(
        None,
        json!({"client_name": "TodayApp", "ext_param_client_id": "nwU59qy9AsDqftmwLcfmkvOhvuYa",
               "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [client_key.jwk]}}),
    )
    .await;
    let assertion = sign(
        &client_key,
        Some("today-1"),
        &claims(
            "nwU59qy9AsDqftmwLcfmkvOhvuYa",
            "nwU59qy9AsDqftmwLcfmkvOhvuYa",
            "j-1",
        ),
    );
    let body = "grant_type=client_credentials&scope=openid&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=<jwt_assertion>&redirect_uri=http://localhost:8080/playground2/oauth2client"
        .replace("<jwt_assertion>", &assertion);
    let (status, answer) = post(
        &api,
        "",
        "application/x-www-form-urlencoded;charset=ISO-8859-1",
        None,
        body,
    )
    .await;
    assert_eq!(status, 200, "{}", answer["error_description"]);
    assert_eq!(
        (&answer["token_type"], &answer["scope"]),
        (&json!("Bearer"), &json!("openid"))
    );
}
