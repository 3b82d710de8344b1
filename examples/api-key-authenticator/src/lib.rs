//! A client authenticator that accepts clients by an `X-API-Key` header.
//!
//! The operator lists the clients and the SHA-256 of their keys in identity.xml — the keys
//! themselves are never stored:
//!
//! ```xml
//! <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
//!                name="api-key" orderId="50" enable="true">
//!   <Property name="ApiKeys">svc-a=9f86d0…, svc-b=60303a…</Property>
//! </EventListener>
//! ```
//!
//! Each request with an `X-API-Key` header is this authenticator's; the key's hash is compared
//! in constant time with every listed hash, so timing tells nothing about which prefix matched.

use sha2::{Digest, Sha256};
use tollgate_core::{
    async_trait, export_plugin, sdk::BoxError, sdk::Plugin, AuthenticatedClient,
    ClientAuthenticator, ComponentContext, ComponentInfo, OAuthError, TokenRequest,
};

/// The header a client presents its key in.
pub const HEADER: &str = "x-api-key";

pub struct ApiKeyAuthenticator {
    /// (client_id, SHA-256 of the key).
    clients: Vec<(String, [u8; 32])>,
}

impl ApiKeyAuthenticator {
    /// Reads the `ApiKeys` property: `client_id=hex(sha256(key))` pairs, comma-separated.
    pub fn new(ctx: &ComponentContext) -> Result<Self, BoxError> {
        let list = ctx
            .properties
            .get("ApiKeys")
            .ok_or("property ApiKeys is required")?;
        let mut clients = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (client_id, digest) = entry
                .split_once('=')
                .ok_or_else(|| format!("ApiKeys entry {entry:?} is not client_id=sha256hex"))?;
            let digest: [u8; 32] = hex::decode(digest.trim())
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| format!("ApiKeys entry for {client_id:?}: not 64 hex digits"))?;
            clients.push((client_id.trim().to_string(), digest));
        }
        if clients.is_empty() {
            return Err("property ApiKeys lists no client".into());
        }
        Ok(ApiKeyAuthenticator { clients })
    }
}

/// Equal in time that depends only on the length.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl ClientAuthenticator for ApiKeyAuthenticator {
    fn can_authenticate(&self, request: &TokenRequest) -> bool {
        request.header(HEADER).is_some()
    }

    async fn authenticate(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let key = request.header(HEADER).unwrap_or_default();
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Look at every entry, so the time does not tell where a match was.
        let mut found = None;
        for (client_id, expected) in &self.clients {
            if constant_time_eq(&digest, expected) {
                found = Some(client_id);
            }
        }
        match found {
            Some(client_id) => Ok(AuthenticatedClient {
                client_id: client_id.clone(),
                auth_method: "api_key".into(),
                jti: None,
            }),
            None => Err(OAuthError::invalid_client("unknown API key")),
        }
    }
}

export_plugin!(Plugin::new().client_authenticator(
    ComponentInfo::client_authenticator("api-key")
        .alias("com.example.tollgate.ApiKeyAuthenticator")
        .property(
            "ApiKeys",
            None,
            "client_id=sha256hex pairs, comma-separated"
        )
        .provides("api_key")
        .description("Authenticates clients by an X-API-Key header"),
    |ctx| ApiKeyAuthenticator::new(&ctx),
));

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::{sdk::TestHost, Properties};

    fn hash(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    fn authenticator(keys: &str) -> Result<ApiKeyAuthenticator, BoxError> {
        ApiKeyAuthenticator::new(&ComponentContext {
            properties: Properties::new(vec![("apikeys".into(), keys.into())]),
            settings: Default::default(),
            host: TestHost::new(0),
        })
    }

    fn request(key: Option<&str>) -> TokenRequest {
        let mut r = TokenRequest::default();
        if let Some(k) = key {
            r.set_header(HEADER, k);
        }
        r
    }

    #[tokio::test]
    async fn accepts_listed_keys_only() {
        let a = authenticator(&format!("svc-a={}, svc-b={}", hash("alpha"), hash("beta"))).unwrap();
        assert!(!a.can_authenticate(&request(None)));
        assert!(a.can_authenticate(&request(Some("x"))));
        assert_eq!(
            a.authenticate(&request(Some("beta")))
                .await
                .unwrap()
                .client_id,
            "svc-b"
        );
        let err = a.authenticate(&request(Some("gamma"))).await.unwrap_err();
        assert_eq!(err.code, tollgate_core::ErrorCode::InvalidClient);
    }

    #[test]
    fn refuses_malformed_properties() {
        assert!(authenticator("svc-a").is_err());
        assert!(authenticator("svc-a=abcd").is_err());
        assert!(authenticator(" , ").is_err());
    }
}
