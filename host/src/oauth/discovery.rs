//! Discovery (RFC 8414) and the server's public keys. Both describe what is really active: the
//! grant types of the active grant handlers, the methods of the active client authenticators.

use super::exchange::{Request, Response};
use super::OAuth;
use serde_json::json;
use tollgate_core::OAuthError;

/// Asymmetric algorithms accepted for client assertions (CONTRACT §6).
const ASSERTION_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl OAuth {
    /// The authorization server metadata of the request's tenant.
    pub fn discovery(&self, request: &Request) -> Response {
        let tenant = match request.tenant() {
            Ok(t) => t,
            Err(e) => return Response::error(&e, false),
        };
        let grant_types: Vec<&String> = self.components.grant_handlers.keys().collect();
        let methods = &self.components.auth_methods;
        let mut metadata = json!({
            "issuer": self.endpoint_url(&tenant),
            "token_endpoint": self.endpoint_url(&tenant),
            "jwks_uri": self.tenant_url(&tenant, "/oauth2/jwks"),
            "introspection_endpoint": self.tenant_url(&tenant, "/oauth2/introspect"),
            "revocation_endpoint": self.tenant_url(&tenant, "/oauth2/revoke"),
            "registration_endpoint": self.tenant_url(&tenant, "/api/identity/oauth2/dcr/v1.1/register"),
            "grant_types_supported": grant_types,
            "token_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_methods_supported": methods,
            // No authorization endpoint: this server issues tokens for grants that need none.
            "response_types_supported": [],
        });
        if methods.iter().any(|m| m == "private_key_jwt") {
            metadata["token_endpoint_auth_signing_alg_values_supported"] = json!(ASSERTION_ALGS);
        }
        Response::json(200, metadata).with_header("cache-control", "public, max-age=300")
    }

    /// `GET /oauth2/jwks`: the tenant's published signing keys.
    pub async fn jwks(&self, request: &Request) -> Response {
        let tenant = match request.tenant() {
            Ok(t) => t,
            Err(e) => return Response::error(&e, false),
        };
        match self.keys.jwks(&tenant, self.clock.now()).await {
            Ok(jwks) => {
                Response::json(200, jwks).with_header("cache-control", "public, max-age=300")
            }
            Err(e) => {
                tracing::error!("jwks: {e}");
                Response::error(&OAuthError::server_error("signing keys unavailable"), false)
            }
        }
    }
}
