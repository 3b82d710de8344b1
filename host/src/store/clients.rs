//! Registered OAuth clients (RFC 7591/7592), per tenant.
//!
//! A client is identified by `(tenant, client_id)`: the same `client_id` in two tenants names two
//! unrelated clients. The client secret is never stored, only its `ServerSecret::hash`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

use super::{Pool, Store, StoreError};

/// A registered client, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    pub tenant: String,
    pub client_id: String,
    pub client_name: String,
    /// `ServerSecret::hash` of the secret; `None` for methods without one (`private_key_jwt`).
    pub secret_hash: Option<String>,
    /// `token_endpoint_auth_method`.
    pub auth_method: String,
    pub grant_types: Vec<String>,
    /// Space-separated scopes the client may request; `None` = any.
    pub scope: Option<String>,
    pub jwks_uri: Option<String>,
    /// Inline JWKS.
    pub jwks: Option<Value>,
    /// `"opaque"`, `"jwt"`, or `None` for the server default.
    pub access_token_format: Option<String>,
    /// The registered metadata as DCR returns it (never the secret).
    pub metadata: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The columns of `clients`, in [`ClientRow`] order.
const COLUMNS: &str = "tenant, client_id, client_name, secret_hash, auth_method, grant_types, \
     scope, jwks_uri, jwks, access_token_format, metadata, created_at, updated_at";

type ClientRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
);

/// JSON text of a value for a TEXT column.
pub(super) fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes to JSON")
}

/// Parses a JSON TEXT column; a malformed one is a decode error naming the column.
pub(super) fn from_json<T: DeserializeOwned>(text: &str, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Database(sqlx::Error::Decode(
            format!("column {column} holds malformed JSON: {e}").into(),
        ))
    })
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        let (
            tenant,
            client_id,
            client_name,
            secret_hash,
            auth_method,
            grant_types,
            scope,
            jwks_uri,
            jwks,
            access_token_format,
            metadata,
            created_at,
            updated_at,
        ) = row;
        Ok(ClientRecord {
            tenant,
            client_id,
            client_name,
            secret_hash,
            auth_method,
            grant_types: from_json(&grant_types, "clients.grant_types")?,
            scope,
            jwks_uri,
            jwks: jwks
                .map(|jwks| from_json(&jwks, "clients.jwks"))
                .transpose()?,
            access_token_format,
            metadata: from_json(&metadata, "clients.metadata")?,
            created_at,
            updated_at,
        })
    }
}

impl Store {
    /// Registers a client; `false` when `(tenant, client_id)` is taken (nothing is changed).
    pub async fn insert_client(&self, c: &ClientRecord) -> Result<bool, StoreError> {
        let insert = format!(
            "INSERT INTO clients ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (tenant, client_id) DO NOTHING"
        );
        let inserted = execute!(
            self,
            &insert,
            c.tenant.as_str(),
            c.client_id.as_str(),
            c.client_name.as_str(),
            c.secret_hash.as_deref(),
            c.auth_method.as_str(),
            to_json(&c.grant_types),
            c.scope.as_deref(),
            c.jwks_uri.as_deref(),
            c.jwks.as_ref().map(to_json),
            c.access_token_format.as_deref(),
            to_json(&c.metadata),
            c.created_at,
            c.updated_at,
        )?;
        Ok(inserted == 1)
    }

    /// The client `client_id` of `tenant`, if registered. Served from the record cache when
    /// read within the last `StoreOptions::cache_ttl` (changes made through this store are
    /// seen at once; another host's, within that time).
    pub async fn client(
        &self,
        tenant: &str,
        client_id: &str,
    ) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        let key = (tenant.to_owned(), client_id.to_owned());
        if let Some(hit) = self.cache.clients.get(&key) {
            return Ok(Some(hit));
        }
        let select = format!("SELECT {COLUMNS} FROM clients WHERE tenant = $1 AND client_id = $2");
        let row: Option<ClientRow> = with_pool!(self, pool => {
            sqlx::query_as(&select).bind(tenant).bind(client_id).fetch_optional(pool).await
        })?;
        let client = row.map(ClientRecord::try_from).transpose()?.map(Arc::new);
        if let Some(c) = &client {
            self.cache.clients.put(key, c.clone());
        }
        Ok(client)
    }

    /// Replaces every column but `tenant`, `client_id` and `created_at`; `false` when the
    /// client is unknown.
    pub async fn update_client(&self, c: &ClientRecord) -> Result<bool, StoreError> {
        const UPDATE: &str = "UPDATE clients SET client_name = $3, secret_hash = $4, \
             auth_method = $5, grant_types = $6, scope = $7, jwks_uri = $8, jwks = $9, \
             access_token_format = $10, metadata = $11, updated_at = $12 \
             WHERE tenant = $1 AND client_id = $2";
        let updated = execute!(
            self,
            UPDATE,
            c.tenant.as_str(),
            c.client_id.as_str(),
            c.client_name.as_str(),
            c.secret_hash.as_deref(),
            c.auth_method.as_str(),
            to_json(&c.grant_types),
            c.scope.as_deref(),
            c.jwks_uri.as_deref(),
            c.jwks.as_ref().map(to_json),
            c.access_token_format.as_deref(),
            to_json(&c.metadata),
            c.updated_at,
        )?;
        self.cache
            .clients
            .forget(&(c.tenant.clone(), c.client_id.clone()));
        Ok(updated == 1)
    }

    /// Deletes the client and, in the same transaction, revokes every token issued to it (so a
    /// client registered later under the same `client_id` inherits none). `false` when unknown.
    pub async fn delete_client(&self, tenant: &str, client_id: &str) -> Result<bool, StoreError> {
        const DELETE: &str = "DELETE FROM clients WHERE tenant = $1 AND client_id = $2";
        const REVOKE: &str = "UPDATE tokens SET revoked = TRUE \
             WHERE tenant = $1 AND client_id = $2 AND revoked = FALSE";
        let deleted = with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query(DELETE)
                .bind(tenant)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if deleted {
                sqlx::query(REVOKE).bind(tenant).bind(client_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(deleted)
        }
        .await)?;
        self.cache
            .clients
            .forget(&(tenant.to_owned(), client_id.to_owned()));
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{on_both_backends, postgres_fixture, sqlite_fixture, Fixture};
    use super::*;

    pub(in crate::store) fn client(tenant: &str, client_id: &str) -> ClientRecord {
        ClientRecord {
            tenant: tenant.into(),
            client_id: client_id.into(),
            client_name: format!("{client_id} app"),
            secret_hash: Some("ab".repeat(32)),
            auth_method: "client_secret_basic".into(),
            grant_types: vec!["client_credentials".into(), "refresh_token".into()],
            scope: Some("read write".into()),
            jwks_uri: None,
            jwks: Some(json!({"keys": [{"kty": "EC", "crv": "P-256"}]})),
            access_token_format: Some("jwt".into()),
            metadata: json!({"client_name": format!("{client_id} app"), "grant_types": ["client_credentials"]}),
            created_at: 100,
            updated_at: 100,
        }
    }

    on_both_backends!(
        client_crud_round_trips,
        client_ids_are_per_tenant,
        client_delete_revokes_its_tokens,
        client_records_are_cached_with_bounded_staleness,
    );

    /// A second host on the same database: its own changes are seen at once, another's within
    /// the cache TTL (here: not within the test), and never with the cache off.
    async fn client_records_are_cached_with_bounded_staleness(fx: &Fixture) {
        let here = &fx.store;
        let options = |ttl: u64| super::super::StoreOptions {
            cache_ttl: std::time::Duration::from_secs(ttl),
            ..super::super::StoreOptions::default()
        };
        let there = Store::open(&fx.url, &options(3600)).await.expect("there");
        let uncached = Store::open(&fx.url, &options(0)).await.expect("off");
        let c = client("acme", "app");
        assert!(here.insert_client(&c).await.expect("insert"));
        // A miss is not cached: registered on one host, known on the other at once.
        assert_eq!(
            there.client("acme", "app").await.expect("read"),
            Some(Arc::new(c.clone()))
        );
        let renamed = ClientRecord {
            client_name: "renamed".into(),
            ..c.clone()
        };
        assert!(here.update_client(&renamed).await.expect("update"));
        assert_eq!(
            here.client("acme", "app").await.expect("here"),
            Some(Arc::new(renamed.clone()))
        );
        assert_eq!(
            there.client("acme", "app").await.expect("there"),
            Some(Arc::new(c.clone()))
        );
        assert_eq!(
            uncached.client("acme", "app").await.expect("off"),
            Some(Arc::new(renamed))
        );
        assert!(there.delete_client("acme", "app").await.expect("delete"));
        assert_eq!(there.client("acme", "app").await.expect("there"), None);
        there.close().await;
        uncached.close().await;
    }

    async fn client_crud_round_trips(fx: &Fixture) {
        let store = &fx.store;
        let c = client("acme", "app1");
        assert_eq!(store.client("acme", "app1").await.expect("client"), None);
        assert!(store.insert_client(&c).await.expect("insert"));
        assert_eq!(
            store.client("acme", "app1").await.expect("client"),
            Some(Arc::new(c.clone()))
        );

        // Taken: nothing changes.
        let mut other = client("acme", "app1");
        other.client_name = "impostor".into();
        assert!(!store.insert_client(&other).await.expect("insert taken"));
        assert_eq!(
            store.client("acme", "app1").await.expect("client"),
            Some(Arc::new(c.clone()))
        );

        // Update replaces all but tenant, client_id and created_at, NULLs included.
        let updated = ClientRecord {
            client_name: "renamed".into(),
            secret_hash: None,
            auth_method: "private_key_jwt".into(),
            grant_types: vec![],
            scope: None,
            jwks_uri: Some("https://app.example/jwks".into()),
            jwks: None,
            access_token_format: None,
            metadata: json!({"client_name": "renamed"}),
            created_at: 999,
            updated_at: 200,
            ..c.clone()
        };
        assert!(store.update_client(&updated).await.expect("update"));
        assert_eq!(
            store.client("acme", "app1").await.expect("client"),
            Some(Arc::new(ClientRecord {
                created_at: 100,
                ..updated.clone()
            }))
        );
        assert!(!store
            .update_client(&client("acme", "nobody"))
            .await
            .expect("update unknown"));

        assert!(store.delete_client("acme", "app1").await.expect("delete"));
        assert_eq!(store.client("acme", "app1").await.expect("client"), None);
        assert!(!store.delete_client("acme", "app1").await.expect("again"));
    }

    async fn client_ids_are_per_tenant(fx: &Fixture) {
        let store = &fx.store;
        let a = client("a", "same");
        let b = ClientRecord {
            client_name: "b's".into(),
            ..client("b", "same")
        };
        assert!(store.insert_client(&a).await.expect("insert a"));
        assert!(store.insert_client(&b).await.expect("insert b"));
        assert_eq!(
            store.client("a", "same").await.expect("a"),
            Some(Arc::new(a.clone()))
        );
        assert_eq!(
            store.client("b", "same").await.expect("b"),
            Some(Arc::new(b))
        );
        assert_eq!(store.client("c", "same").await.expect("c"), None);
        assert!(store.delete_client("b", "same").await.expect("delete b"));
        assert_eq!(
            store.client("a", "same").await.expect("a"),
            Some(Arc::new(a))
        );
    }

    async fn client_delete_revokes_its_tokens(fx: &Fixture) {
        use crate::store::tokens::tests::token;
        use crate::store::TokenKind;

        let store = &fx.store;
        assert!(store
            .insert_client(&client("a", "app"))
            .await
            .expect("insert"));
        let mine = token("h1", "a", "app", TokenKind::Access, "f1", 1_000);
        let other_tenant = token("h2", "b", "app", TokenKind::Access, "f2", 1_000);
        let other_client = token("h3", "a", "other", TokenKind::Refresh, "f3", 1_000);
        store
            .insert_tokens(vec![], vec![mine, other_tenant, other_client])
            .await
            .expect("insert tokens");
        assert!(store.delete_client("a", "app").await.expect("delete"));
        let revoked = |hash: &'static str| async move {
            store
                .token(hash)
                .await
                .expect("token")
                .expect("exists")
                .revoked
        };
        assert!(revoked("h1").await);
        assert!(!revoked("h2").await);
        assert!(!revoked("h3").await);
    }
}
