//! The server's signing keys, one current key per tenant plus the retired ones.
//!
//! Keys live in the database rather than in each host's data dir so that every host sharing the
//! database signs with the same key and publishes the same JWKS. The private key is stored sealed
//! (see [`crate::tokens::keys`]); this module only moves rows.
//!
//! At most one key per tenant is current (`retired_at IS NULL`): the partial unique index
//! `signing_keys_one_current` enforces it, and [`Store::insert_current_key`] relies on it so that
//! hosts making a tenant's first key at the same moment agree on one.

use super::{Pool, Store, StoreError};

/// One row of `signing_keys`.
#[derive(Clone, Debug, PartialEq)]
pub struct SigningKeyRecord {
    pub tenant: String,
    pub kid: String,
    /// JOSE name of the algorithm the key signs with (`RS256`, `PS256`, `ES256`, `EdDSA`).
    pub alg: String,
    /// The PKCS#8 DER private key, sealed with [`crate::secret::ServerSecret::encrypt`].
    pub private_key: String,
    /// The public JWK as published in the JWKS.
    pub public_jwk: serde_json::Value,
    pub created_at: i64,
    /// `None` while the key is the tenant's current one.
    pub retired_at: Option<i64>,
}

type Row = (String, String, String, String, String, i64, Option<i64>);

/// `SELECT`s the columns of a [`Row`] from `signing_keys`, followed by `$rest`.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT tenant, kid, alg, private_key, public_jwk, created_at, retired_at \
             FROM signing_keys ",
            $rest
        )
    };
}

fn record(row: Row) -> Result<SigningKeyRecord, StoreError> {
    let (tenant, kid, alg, private_key, public_jwk, created_at, retired_at) = row;
    let public_jwk = serde_json::from_str(&public_jwk)
        .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?;
    Ok(SigningKeyRecord {
        tenant,
        kid,
        alg,
        private_key,
        public_jwk,
        created_at,
        retired_at,
    })
}

impl Store {
    /// Inserts `rec` as the tenant's current key unless the tenant already has one (or the kid
    /// is taken): `false` then, and the caller reads the key that won with
    /// [`Store::current_key`]. `rec.retired_at` is ignored.
    pub async fn insert_current_key(&self, rec: &SigningKeyRecord) -> Result<bool, StoreError> {
        // A bare ON CONFLICT covers every unique constraint, the partial index included.
        const INSERT: &str = "INSERT INTO signing_keys \
             (tenant, kid, alg, private_key, public_jwk, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT DO NOTHING";
        let jwk = rec.public_jwk.to_string();
        let inserted = execute!(
            self,
            INSERT,
            &rec.tenant,
            &rec.kid,
            &rec.alg,
            &rec.private_key,
            &jwk,
            rec.created_at
        )?;
        Ok(inserted == 1)
    }

    /// The tenant's current key, if it has one.
    pub async fn current_key(&self, tenant: &str) -> Result<Option<SigningKeyRecord>, StoreError> {
        const SELECT: &str = select!("WHERE tenant = $1 AND retired_at IS NULL");
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(SELECT).bind(tenant).fetch_optional(pool).await
        })?;
        row.map(record).transpose()
    }

    /// The keys to publish: the current one and those retired at or after
    /// `not_retired_before`, newest first.
    pub async fn published_keys(
        &self,
        tenant: &str,
        not_retired_before: i64,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        const SELECT: &str = select!(
            "WHERE tenant = $1 AND (retired_at IS NULL OR retired_at >= $2) \
             ORDER BY created_at DESC, kid"
        );
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(SELECT).bind(tenant).bind(not_retired_before).fetch_all(pool).await
        })?;
        rows.into_iter().map(record).collect()
    }

    /// Retires the tenant's current key as of `now`; `false` when it had none.
    pub async fn retire_current_key(&self, tenant: &str, now: i64) -> Result<bool, StoreError> {
        const RETIRE: &str =
            "UPDATE signing_keys SET retired_at = $2 WHERE tenant = $1 AND retired_at IS NULL";
        Ok(execute!(self, RETIRE, tenant, now)? == 1)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{
        concurrently, on_both_backends, postgres_fixture, sqlite_fixture, Fixture,
    };
    use super::*;

    fn rec(tenant: &str, kid: &str, created_at: i64) -> SigningKeyRecord {
        SigningKeyRecord {
            tenant: tenant.into(),
            kid: kid.into(),
            alg: "ES256".into(),
            private_key: format!("sealed-{kid}"),
            public_jwk: json!({"kty": "EC", "kid": kid}),
            created_at,
            retired_at: None,
        }
    }

    async fn insert(store: &Store, tenant: &str, kid: &str, at: i64) -> bool {
        store
            .insert_current_key(&rec(tenant, kid, at))
            .await
            .unwrap()
    }

    async fn published(store: &Store, tenant: &str, bound: i64) -> Vec<String> {
        let keys = store.published_keys(tenant, bound).await.unwrap();
        keys.into_iter().map(|k| k.kid).collect()
    }

    async fn one_current_key_per_tenant(fx: &Fixture) {
        let store = &fx.store;
        assert_eq!(store.current_key("acme").await.unwrap(), None);
        assert!(!store.retire_current_key("acme", 5).await.unwrap());

        assert!(insert(store, "acme", "k1", 10).await);
        assert!(!insert(store, "acme", "k2", 11).await);
        // The same kid in another tenant is another key.
        assert!(insert(store, "other", "k1", 12).await);
        let current = store.current_key("acme").await.unwrap();
        assert_eq!(current, Some(rec("acme", "k1", 10)));

        assert!(store.retire_current_key("acme", 100).await.unwrap());
        assert_eq!(store.current_key("acme").await.unwrap(), None);
        assert!(insert(store, "acme", "k2", 101).await);
        assert!(store.retire_current_key("acme", 200).await.unwrap());
        // A retired kid cannot come back as current.
        assert!(!insert(store, "acme", "k1", 201).await);
        assert!(insert(store, "acme", "k3", 202).await);

        assert_eq!(published(store, "acme", 0).await, ["k3", "k2", "k1"]);
        assert_eq!(published(store, "acme", 101).await, ["k3", "k2"]);
        assert_eq!(published(store, "acme", 200).await, ["k3", "k2"]);
        assert_eq!(published(store, "acme", 201).await, ["k3"]);
        assert!(published(store, "none", 0).await.is_empty());
        let keys = store.published_keys("acme", 0).await.unwrap();
        let retired: Vec<_> = keys.iter().map(|k| k.retired_at).collect();
        assert_eq!(retired, [None, Some(200), Some(100)]);
    }

    async fn racing_inserts_make_one_current_key(fx: &Fixture) {
        let inserted = concurrently(&fx.store, 20, |store, i| async move {
            let rec = rec("acme", &format!("k{i}"), i as i64);
            store.insert_current_key(&rec).await.unwrap()
        })
        .await;
        let won = inserted.into_iter().filter(|&won| won).count();
        assert_eq!(won, 1);
        assert_eq!(fx.store.published_keys("acme", 0).await.unwrap().len(), 1);
    }

    on_both_backends!(
        one_current_key_per_tenant,
        racing_inserts_make_one_current_key
    );
}
