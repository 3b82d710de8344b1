//! A small client of a running server's HTTP API, as the end-to-end tests use it: the super
//! admin's registration calls and the token endpoint.
#![allow(dead_code)]

use serde_json::{json, Value};

/// The super admin's credentials the tests configure.
pub const ADMIN: (&str, &str) = ("admin", "admin-pw");

/// A deployment.toml for tests: loopback, no TLS, the admin password above, and `extra`.
pub fn deployment(extra: &str) -> String {
    format!(
        "[server]\nbind = \"127.0.0.1:0\"\n[server.tls]\nenabled = false\n[super_admin]\npassword = \"{}\"\n{extra}",
        ADMIN.1
    )
}

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
}

pub fn prefix(tenant: Option<&str>) -> String {
    tenant.map(|t| format!("/t/{t}")).unwrap_or_default()
}

impl Api {
    pub fn new(url: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            url: url.to_string(),
        }
    }

    /// A super-admin JSON request; (status, body).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        tenant: Option<&str>,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{}{path}", self.url, prefix(tenant)))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers a client (RFC 7591 metadata); the 201 body.
    pub async fn client(&self, tenant: Option<&str>, metadata: Value) -> Value {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                tenant,
                "/api/identity/oauth2/dcr/v1.1/register",
                metadata,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Registers an identity provider; its id.
    pub async fn idp(&self, tenant: Option<&str>, name: &str, certificate: Value) -> String {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                tenant,
                "/api/server/v1/identity-providers",
                json!({"name": name, "certificate": certificate}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().into()
    }

    /// POSTs a form to the token endpoint, with Basic client credentials if given.
    pub async fn token(
        &self,
        tenant: Option<&str>,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let (status, text) = self.token_text(tenant, basic, form).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// As [`Api::token`], with the response body as sent (to check what it does not contain).
    pub async fn token_text(
        &self,
        tenant: Option<&str>,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .http
            .post(format!("{}{}/oauth2/token", self.url, prefix(tenant)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// The discovery document.
    pub async fn discovery(&self, tenant: Option<&str>) -> Value {
        self.http
            .get(format!(
                "{}{}/.well-known/openid-configuration",
                self.url,
                prefix(tenant)
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
