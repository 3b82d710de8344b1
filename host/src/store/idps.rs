//! Identity providers a tenant trusts for the JWT bearer grant, per tenant.
//!
//! `name` (the issuer the IdP puts in `iss`) is unique within a tenant; the database enforces it,
//! so two hosts registering the same name at once cannot both succeed.

use serde_json::Value;
use std::sync::Arc;

use super::clients::{from_json, to_json};
use super::{Pool, Store, StoreError};

/// An identity provider, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct IdpRecord {
    pub tenant: String,
    /// Server-made identifier (the `{id}` of the REST API).
    pub id: String,
    /// The issuer the IdP's assertions carry in `iss`.
    pub name: String,
    /// The audience the IdP puts in `aud`; `None` = the tenant's token endpoint URL.
    pub alias: Option<String>,
    pub enabled: bool,
    pub jwks_uri: Option<String>,
    /// PEM certificates.
    pub certificates: Vec<String>,
    /// The WSO2-shaped record as the API returns it.
    pub record: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What [`Store::update_idp`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated,
    NotFound,
    /// Another IdP of the tenant already has the new name; nothing was changed.
    NameTaken,
}

/// The columns of `identity_providers`, in [`IdpRow`] order.
const COLUMNS: &str = "tenant, id, name, alias, enabled, jwks_uri, certificates, record, \
     created_at, updated_at";

type IdpRow = (
    String,
    String,
    String,
    Option<String>,
    bool,
    Option<String>,
    String,
    String,
    i64,
    i64,
);

impl TryFrom<IdpRow> for IdpRecord {
    type Error = StoreError;

    fn try_from(row: IdpRow) -> Result<Self, StoreError> {
        let (
            tenant,
            id,
            name,
            alias,
            enabled,
            jwks_uri,
            certificates,
            record,
            created_at,
            updated_at,
        ) = row;
        Ok(IdpRecord {
            tenant,
            id,
            name,
            alias,
            enabled,
            jwks_uri,
            certificates: from_json(&certificates, "identity_providers.certificates")?,
            record: from_json(&record, "identity_providers.record")?,
            created_at,
            updated_at,
        })
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Registers an IdP; `false` when its name is taken in the tenant (nothing is changed).
    pub async fn insert_idp(&self, r: &IdpRecord) -> Result<bool, StoreError> {
        // No conflict target: either unique constraint (name, or the improbable id clash) means
        // "not inserted".
        let insert = format!(
            "INSERT INTO identity_providers ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
        );
        let inserted = execute!(
            self,
            &insert,
            r.tenant.as_str(),
            r.id.as_str(),
            r.name.as_str(),
            r.alias.as_deref(),
            r.enabled,
            r.jwks_uri.as_deref(),
            to_json(&r.certificates),
            to_json(&r.record),
            r.created_at,
            r.updated_at,
        )?;
        Ok(inserted == 1)
    }

    /// The IdP `id` of `tenant`.
    pub async fn idp(&self, tenant: &str, id: &str) -> Result<Option<IdpRecord>, StoreError> {
        self.idp_where("id", tenant, id).await
    }

    /// The IdP of `tenant` called `name` (the issuer of its assertions).
    /// Served from the record cache like [`Store::client`].
    pub async fn idp_by_name(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<Arc<IdpRecord>>, StoreError> {
        let key = (tenant.to_owned(), name.to_owned());
        if let Some(hit) = self.cache.idps.get(&key) {
            return Ok(Some(hit));
        }
        let idp = self.idp_where("name", tenant, name).await?.map(Arc::new);
        if let Some(r) = &idp {
            self.cache.idps.put(key, r.clone());
        }
        Ok(idp)
    }

    async fn idp_where(
        &self,
        column: &str,
        tenant: &str,
        value: &str,
    ) -> Result<Option<IdpRecord>, StoreError> {
        let select =
            format!("SELECT {COLUMNS} FROM identity_providers WHERE tenant = $1 AND {column} = $2");
        let row: Option<IdpRow> = with_pool!(self, pool => {
            sqlx::query_as(&select).bind(tenant).bind(value).fetch_optional(pool).await
        })?;
        row.map(IdpRecord::try_from).transpose()
    }

    /// Every IdP of `tenant`, ordered by name (byte order, the same on both backends).
    pub async fn list_idps(&self, tenant: &str) -> Result<Vec<IdpRecord>, StoreError> {
        let select = format!("SELECT {COLUMNS} FROM identity_providers WHERE tenant = $1");
        let rows: Vec<IdpRow> = with_pool!(self, pool => {
            sqlx::query_as(&select).bind(tenant).fetch_all(pool).await
        })?;
        let mut idps = rows
            .into_iter()
            .map(IdpRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here rather than by ORDER BY: PostgreSQL's collation depends on the locale.
        idps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(idps)
    }

    /// Replaces every column but `tenant`, `id` and `created_at`.
    pub async fn update_idp(&self, r: &IdpRecord) -> Result<UpdateOutcome, StoreError> {
        const UPDATE: &str = "UPDATE identity_providers SET name = $3, alias = $4, enabled = $5, \
             jwks_uri = $6, certificates = $7, record = $8, updated_at = $9 \
             WHERE tenant = $1 AND id = $2";
        let updated = execute!(
            self,
            UPDATE,
            r.tenant.as_str(),
            r.id.as_str(),
            r.name.as_str(),
            r.alias.as_deref(),
            r.enabled,
            r.jwks_uri.as_deref(),
            to_json(&r.certificates),
            to_json(&r.record),
            r.updated_at,
        );
        // Keyed by name, which an update may change: forget them all (updates are rare).
        self.cache.idps.forget_all();
        match updated {
            Ok(1) => Ok(UpdateOutcome::Updated),
            Ok(_) => Ok(UpdateOutcome::NotFound),
            Err(e) if is_unique_violation(&e) => Ok(UpdateOutcome::NameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the IdP; `false` when unknown.
    pub async fn delete_idp(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        const DELETE: &str = "DELETE FROM identity_providers WHERE tenant = $1 AND id = $2";
        let deleted = execute!(self, DELETE, tenant, id)? == 1;
        self.cache.idps.forget_all();
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{
        concurrently, on_both_backends, postgres_fixture, sqlite_fixture, Fixture,
    };
    use super::*;

    fn idp(tenant: &str, id: &str, name: &str) -> IdpRecord {
        IdpRecord {
            tenant: tenant.into(),
            id: id.into(),
            name: name.into(),
            alias: Some("https://localhost:9443/oauth2/token".into()),
            enabled: true,
            jwks_uri: None,
            certificates: vec![
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            ],
            record: json!({"id": id, "name": name, "isEnabled": true}),
            created_at: 10,
            updated_at: 10,
        }
    }

    on_both_backends!(
        idp_crud_round_trips,
        idp_names_are_unique_per_tenant,
        idp_concurrent_inserts_of_one_name_store_one,
    );

    async fn idp_crud_round_trips(fx: &Fixture) {
        let store = &fx.store;
        let a = idp("acme", "id-a", "https://b.example");
        let b = IdpRecord {
            alias: None,
            enabled: false,
            jwks_uri: Some("https://a.example/jwks".into()),
            certificates: vec![],
            ..idp("acme", "id-b", "https://a.example")
        };
        assert!(store.insert_idp(&a).await.expect("insert a"));
        assert!(store.insert_idp(&b).await.expect("insert b"));
        assert_eq!(
            store.idp("acme", "id-a").await.expect("idp"),
            Some(a.clone())
        );
        assert_eq!(
            store
                .idp_by_name("acme", "https://a.example")
                .await
                .expect("by name"),
            Some(Arc::new(b.clone()))
        );
        assert_eq!(store.idp("acme", "nope").await.expect("idp"), None);
        assert_eq!(
            store.list_idps("acme").await.expect("list"),
            vec![b.clone(), a.clone()]
        );

        let renamed = IdpRecord {
            name: "https://c.example".into(),
            enabled: false,
            created_at: 999,
            updated_at: 20,
            ..a.clone()
        };
        assert_eq!(
            store.update_idp(&renamed).await.expect("update"),
            UpdateOutcome::Updated
        );
        assert_eq!(
            store.idp("acme", "id-a").await.expect("idp"),
            Some(IdpRecord {
                created_at: 10,
                ..renamed
            })
        );
        assert_eq!(
            store
                .idp_by_name("acme", "https://b.example")
                .await
                .expect("old name"),
            None
        );
        assert_eq!(
            store
                .update_idp(&idp("acme", "nope", "x"))
                .await
                .expect("update unknown"),
            UpdateOutcome::NotFound
        );

        assert!(store.delete_idp("acme", "id-a").await.expect("delete"));
        assert!(!store.delete_idp("acme", "id-a").await.expect("again"));
        assert_eq!(store.list_idps("acme").await.expect("list"), vec![b]);
    }

    async fn idp_names_are_unique_per_tenant(fx: &Fixture) {
        let store = &fx.store;
        let name = "https://idp.example";
        assert!(store
            .insert_idp(&idp("t1", "1", name))
            .await
            .expect("insert"));
        assert!(!store
            .insert_idp(&idp("t1", "2", name))
            .await
            .expect("name taken"));
        assert_eq!(store.idp("t1", "2").await.expect("idp"), None);
        // Another tenant may use the name, and sees nothing of t1.
        assert!(store.insert_idp(&idp("t2", "3", name)).await.expect("t2"));
        assert_eq!(store.idp("t2", "1").await.expect("idp"), None);
        assert_eq!(
            store
                .idp_by_name("t2", name)
                .await
                .expect("by name")
                .map(|r| r.id.clone()),
            Some("3".into())
        );

        // Renaming onto a taken name changes nothing.
        assert!(store
            .insert_idp(&idp("t1", "4", "https://other.example"))
            .await
            .expect("insert"));
        assert_eq!(
            store
                .update_idp(&idp("t1", "4", name))
                .await
                .expect("update"),
            UpdateOutcome::NameTaken
        );
        assert_eq!(
            store.idp("t1", "4").await.expect("idp").map(|r| r.name),
            Some("https://other.example".into())
        );
        assert_eq!(store.list_idps("t1").await.expect("list").len(), 2);
        assert_eq!(store.list_idps("t3").await.expect("list"), vec![]);
    }

    async fn idp_concurrent_inserts_of_one_name_store_one(fx: &Fixture) {
        let results = concurrently(&fx.store, 20, |store, i| async move {
            store
                .insert_idp(&idp("race", &format!("id-{i}"), "https://same.example"))
                .await
        })
        .await;
        let inserted = results
            .into_iter()
            .filter(|r| *r.as_ref().expect("insert_idp"))
            .count();
        assert_eq!(inserted, 1);
        assert_eq!(fx.store.list_idps("race").await.expect("list").len(), 1);
    }
}
