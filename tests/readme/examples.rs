//! The example plugins of docs/plugins.md, as an operator would use them: built out of tree (own
//! workspace, own Cargo.lock), copied into a dropins directory next to the bundled plugins,
//! enabled in identity.xml as the guide shows, and used over HTTP through the real loader.
//! (The API-key authenticator is exercised the same way in tests/oauth.rs.)

use super::common::api::{deployment, Api};
use super::common::idp::{rsa, sign, Answer, JwksServer, TestKey};
use super::common::{
    bundled_plugins, conf_dir, github_actions_plugin, identity_with, pinned_key_plugin, Server,
};
use serde_json::{json, Value};

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const GITHUB_GRANT: &str = "urn:example:params:oauth:grant-type:github-actions";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The identity providers' default alias: the token endpoint URL of the default `base_url`.
const ALIAS: &str = "https://localhost:9443/oauth2/token";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A temp base with the bundled plugins and `extra` plugin in dropins, and a conf dir with
/// these listeners; the server started on it.
fn start(
    listeners: &str,
    extra: fn(&std::path::Path) -> std::path::PathBuf,
) -> (tempfile::TempDir, Server) {
    let base = tempfile::tempdir().expect("temp dir");
    let dropins = base.path().join("dropins");
    bundled_plugins(&dropins);
    extra(&dropins);
    let conf = conf_dir(base.path(), &deployment(""), &identity_with(listeners));
    let server = Server::start(&conf, &[]);
    (base, server)
}

/// The registered client's Basic credentials.
fn credentials(client: &Value) -> (String, String) {
    let text = |name: &str| client[name].as_str().expect(name).to_owned();
    (text("client_id"), text("client_secret"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_github_actions_grant_admits_allowed_repositories_only() {
    let (_base, server) = start(
        r#"    <EventListener name="jwks-validator" orderId="10" enable="true"/>
    <EventListener name="github-actions" orderId="60" enable="true">
      <Property name="AllowedRepositories">acme/app</Property>
    </EventListener>"#,
        github_actions_plugin,
    );
    let api = Api::new(&server.url);
    let github = rsa("rsa-2048", "gh-1");
    let jwks = JwksServer::start(Answer::Status(503)).await;
    jwks.serve(&[&github.jwk], &[]);
    api.idp(None, GITHUB, json!({"jwksUri": jwks.uri})).await;
    assert!(api.discovery(None).await["grant_types_supported"]
        .as_array()
        .is_some_and(|g| g.contains(&json!(GITHUB_GRANT))));
    let client = api
        .client(
            None,
            json!({"client_name": "ci", "grant_types": [GITHUB_GRANT], "scope": "deploy"}),
        )
        .await;
    let (id, secret) = credentials(&client);
    let job = |repository: &str, jti: &str| {
        let t = now();
        sign(
            &github,
            Some("gh-1"),
            &json!({"iss": GITHUB, "aud": ALIAS,
                    "sub": format!("repo:{repository}:ref:refs/heads/main"), "repository": repository,
                    "ref": "refs/heads/main", "jti": jti, "iat": t, "nbf": t, "exp": t + 300}),
        )
    };
    let exchange = |assertion: String| {
        let api = api.clone();
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            api.token(
                None,
                Some((&id, &secret)),
                &[
                    ("grant_type", GITHUB_GRANT),
                    ("assertion", &assertion),
                    ("scope", "deploy"),
                ],
            )
            .await
        }
    };
    let (status, body) = exchange(job("acme/app", "run-1")).await;
    assert_eq!(status, 200, "{}", body["error_description"]);
    assert_eq!(
        (&body["token_type"], &body["scope"]),
        (&json!("Bearer"), &json!("deploy"))
    );
    assert!(body.get("refresh_token").is_none());
    let (status, body) = exchange(job("evil/app", "run-2")).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")));
    assert!(body["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("AllowedRepositories")));
    let (status, body) = exchange(job("acme/app", "run-1")).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "a replayed jti"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pinned_key_validator_ignores_the_registered_keys_of_its_issuers() {
    let pinned = rsa("rsa-2048", "p1");
    let mut pinned_jwk = pinned.jwk.clone();
    pinned_jwk["alg"] = "RS256".into();
    let listeners = format!(
        r#"    <EventListener name="jwt-bearer" orderId="100" enable="true"/>
    <EventListener name="jwks-validator" orderId="10" enable="true"/>
    <EventListener name="pinned-key" orderId="5" enable="true">
      <Property name="Issuers">https://partner.example.com</Property>
      <Property name="PinnedJwks">{}</Property>
    </EventListener>"#,
        json!({ "keys": [pinned_jwk] })
    );
    let (_base, server) = start(&listeners, pinned_key_plugin);
    let api = Api::new(&server.url);

    // Both identity providers register the same JWKS URI, serving another key under kid p1.
    let registered = rsa("rsa-2048-b", "p1");
    let jwks = JwksServer::start(Answer::Status(503)).await;
    jwks.serve(&[&registered.jwk], &[]);
    for idp in ["https://partner.example.com", "https://idp.example.com"] {
        api.idp(None, idp, json!({"jwksUri": jwks.uri})).await;
    }
    let client = api
        .client(
            None,
            json!({"client_name": "app", "grant_types": [JWT_BEARER]}),
        )
        .await;
    let (id, secret) = credentials(&client);
    let exchange = |key: &TestKey, iss: &str, jti: &str| {
        let t = now();
        let assertion = sign(
            key,
            Some("p1"),
            &json!({"iss": iss, "sub": "alice", "aud": ALIAS,
                    "jti": jti, "iat": t, "exp": t + 300}),
        );
        let (api, id, secret) = (api.clone(), id.clone(), secret.clone());
        async move {
            api.token(
                None,
                Some((&id, &secret)),
                &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
            )
            .await
        }
    };
    let partner = "https://partner.example.com";
    let (status, body) = exchange(&pinned, partner, "a").await;
    assert_eq!(status, 200, "the pinned key: {}", body["error_description"]);
    let (status, body) = exchange(&registered, partner, "b").await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "the registered key is not pinned"
    );
    let (status, body) = exchange(&registered, "https://idp.example.com", "c").await;
    assert_eq!(
        status, 200,
        "other issuers keep the JWKS validator: {}",
        body["error_description"]
    );
}
