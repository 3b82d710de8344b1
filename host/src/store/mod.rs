//! Tollgate's storage layer: one API over embedded SQLite and PostgreSQL.
//!
//! A single Tollgate host keeps its state in an SQLite file next to its configuration; that is
//! the default because it needs nothing else to run. Several hosts behind a load balancer
//! instead share one PostgreSQL database, and everything that must hold *across* hosts — above
//! all the replay check on `jti` — is therefore decided by the database in one statement,
//! never by a check in Rust followed by a write.
//!
//! Why it is built this way:
//!
//! * **One code path.** Every query is written once, in SQL both dialects accept: `$1`
//!   placeholders (sqlx's SQLite driver takes them too) and `INSERT … ON CONFLICT … DO …`
//!   (SQLite ≥ 3.24, PostgreSQL ≥ 9.5). The pool is an enum and the `with_pool!` macro expands
//!   the same query once per variant, so each backend still gets its own typed driver — no
//!   `sqlx::Any` and its lowest-common-denominator type mapping. One exception, for speed:
//!   the group commit's writes to an SQLite file run on a connection of their own
//!   ([`sqlite_writer`], rusqlite), with the same SQL one row at a time.
//! * **Migrations per backend.** DDL is where the dialects really differ (identity columns,
//!   `WITHOUT ROWID`), so `migrations/sqlite/` and `migrations/postgres/` hold one numbered file
//!   per migration each (`0001_init.sql`, `0002_…`), embedded into the binary and applied by
//!   [`Store::open`]. Add a migration to both directories in the same change.
//! * **Race-safe by construction.** Get-or-create operations ([`Store::ensure_tenant`],
//!   [`Store::setting_get_or_insert`]) insert with `ON CONFLICT DO NOTHING` and then read, so
//!   hosts racing on the same key all end up with the one stored row.
//!
//! Times are unix seconds (`i64`) passed in by the caller, which keeps the store free of clocks
//! and the tests deterministic.

mod error;
mod open;

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

pub use error::StoreError;

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend is in use.
///
/// The body is expanded once per backend, so it must type-check against both drivers — which
/// plain `sqlx::query(…).bind(…).execute($pool)` with `i64`/`String`/`&str` does.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Executes `$sql` with the given bind arguments on either backend; yields
/// `Result<u64, sqlx::Error>`, the number of rows affected.
macro_rules! execute {
    ($store:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        with_pool!($store, pool => {
            sqlx::query($sql)$(.bind($arg))*.execute(pool).await.map(|done| done.rows_affected())
        })
    };
}

// After the macros, which they use.
mod batch;
mod cache;
mod clients;
mod idps;
mod keys;
pub mod sqlite_malloc;
mod sqlite_writer;
mod tokens;
mod wal_buffer;
pub use batch::CommitMetrics;
pub use clients::ClientRecord;
pub use idps::{IdpRecord, UpdateOutcome};
pub use keys::SigningKeyRecord;
pub use tokens::{RefreshState, TokenKind, TokenRecord};

/// The most rows one statement of a purge of expired rows deletes ([`Store::purge_in_chunks`]).
pub(crate) const PURGE_CHUNK: i64 = 250;
/// The least a purge sleeps between two chunks.
const PURGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// One jti check ([`Store::check_and_store_jti`], [`Store::insert_tokens`]), at `now`.
#[derive(Debug, Clone)]
pub struct JtiRecord {
    /// [`jti_key`] of the scope and the jti.
    pub key: JtiKey,
    pub exp: i64,
    pub now: i64,
}

impl JtiRecord {
    pub fn new(scope: &str, jti: &str, exp: i64, now: i64) -> JtiRecord {
        JtiRecord {
            key: jti_key(scope, jti),
            exp,
            now,
        }
    }
}

/// What the jti table is keyed by: [`jti_key`].
pub type JtiKey = [u8; 16];

/// The key a `(scope, jti)` pair is stored under: the first 16 bytes of SHA-256 over the
/// scope's length in bytes (8, big-endian), the scope and the jti. The length keeps two pairs
/// that concatenate alike apart; 128 bits keep unequal pairs apart for good.
///
/// Why not the two strings: a jti is random, so each grant puts its key on a random leaf of
/// the table's unique index, and those leaves and their splits were the largest part of what a
/// commit wrote (45 % of an SQLite WAL's frames with a scope and a jti of ~100 bytes; ~5 times
/// more keys per page now, −15 % bytes written per private_key_jwt grant). It also bounds the
/// row whatever length of jti a token carries. Migration 0005 computes the same key in SQL:
/// PostgreSQL with its `sha256`, SQLite with [`open`]'s `tollgate_jti_key` function.
pub fn jti_key(scope: &str, jti: &str) -> JtiKey {
    jti_key_of(scope.as_bytes(), jti.as_bytes())
}

/// [`jti_key`] of the bytes of a scope and a jti.
fn jti_key_of(scope: &[u8], jti: &[u8]) -> JtiKey {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(&(scope.len() as u64).to_be_bytes());
    digest.update(scope);
    digest.update(jti);
    let mut key = [0; 16];
    key.copy_from_slice(&digest.finish().as_ref()[..16]);
    key
}

/// Handle to the database; cheap to clone (the pools are reference-counted).
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// Recently read records ([`cache`]), shared by every clone.
    cache: std::sync::Arc<cache::Caches>,
    /// Group commit of token inserts ([`batch`]); `None` in the writer's own handle.
    writer: Option<batch::TokenWriter>,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Connection pool settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Connections kept at most (SQLite in-memory databases always use exactly one).
    pub max_connections: u32,
    /// How long a query waits for a free connection (or for a new one to be established).
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout` for every pooled connection; `0` disables it.
    /// SQLite has no equivalent (its writers wait up to a fixed 5 s `busy_timeout`).
    pub statement_timeout: Duration,
    /// How long a record read from the database may be served from memory (`[database]
    /// cache_ttl_secs`); zero turns the cache off.
    pub cache_ttl: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            cache_ttl: Duration::from_secs(5),
        }
    }
}

/// A tenant: the namespace clients, IdPs and tokens belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

impl Store {
    /// Opens (creating the SQLite file and its parent directory if missing) and migrates.
    ///
    /// Accepted URLs: `sqlite:///abs/path.db`, `sqlite://relative/path.db`, `sqlite::memory:`,
    /// and `postgres://…` / `postgresql://…`.
    ///
    /// SQLite: WAL journal, synchronous=NORMAL, foreign_keys on, busy_timeout 5 s,
    /// create_if_missing. PostgreSQL: migrations run under sqlx's advisory lock, so hosts
    /// starting together against a fresh database are safe.
    ///
    /// A database that cannot be opened yields [`StoreError::Open`], whose message names the
    /// URL (password redacted) and the reason.
    pub async fn open(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        let (pool, sqlite_writer) = if url.starts_with("sqlite:") {
            let (pool, writer) = open::sqlite(url, opts).await?;
            (Pool::Sqlite(pool), writer)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Pool::Postgres(open::postgres(url, opts).await?), None)
        } else {
            return Err(StoreError::open(
                url,
                "unsupported URL scheme (expected sqlite: or postgres://)",
            ));
        };
        let cache = std::sync::Arc::new(cache::Caches::new(opts.cache_ttl));
        let committer = match sqlite_writer {
            Some(writer) => batch::Committer::Sqlite(writer),
            None => batch::Committer::Pool(Store {
                pool: pool.clone(),
                cache: cache.clone(),
                writer: None,
            }),
        };
        let writer = batch::TokenWriter::start(committer)
            .map_err(|e| StoreError::open(url, format!("cannot start the writer thread: {e}")))?;
        let store = Store {
            pool,
            cache,
            writer: Some(writer),
        };
        tracing::info!(
            backend = store.backend(),
            url = %error::redact_url(url),
            "database opened"
        );
        Ok(store)
    }

    /// The group commit's counters, to register (`None` in the writer's own handle).
    pub fn commit_metrics(&self) -> Option<&batch::CommitMetrics> {
        self.writer.as_ref().map(batch::TokenWriter::metrics)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Round-trips `SELECT 1`; used by `/health`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        execute!(self, "SELECT 1")?;
        Ok(())
    }

    /// Closes all connections, waiting for those in use to be returned. For graceful shutdown;
    /// any later query fails.
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            Box::pin(writer.close()).await;
        }
        with_pool!(self, pool => pool.close().await)
    }

    /// A tenant comes into being on first use: idempotent and race-safe
    /// (`INSERT … ON CONFLICT DO NOTHING`, then `SELECT`). `now` only sets `created_at` of a
    /// tenant that did not exist yet.
    pub async fn ensure_tenant(&self, name: &str, now: i64) -> Result<Tenant, StoreError> {
        const INSERT: &str =
            "INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        execute!(self, INSERT, name, now)?;
        self.tenant(name)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// The tenant called `name`, if it exists.
    pub async fn tenant(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        const SELECT: &str = "SELECT id, name, created_at FROM tenants WHERE name = $1";
        let row: Option<(i64, String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(SELECT).bind(name).fetch_optional(pool).await
        })?;
        Ok(row.map(|(id, name, created_at)| Tenant {
            id,
            name,
            created_at,
        }))
    }

    /// The atomic replay check shared by every host on the database: records `(scope, jti)`
    /// until `exp` (unix seconds).
    ///
    /// Returns `true` when the jti was not seen (or only seen with an `exp` already past `now`,
    /// in which case the row is replaced), `false` when it is a replay. It is one statement —
    /// the conflicting row is only overwritten when it has expired — and `rows_affected() == 1`
    /// means stored, so two hosts presenting the same jti at once cannot both succeed.
    pub async fn check_and_store_jti(
        &self,
        scope: &str,
        jti: &str,
        exp: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .insert_tokens(vec![JtiRecord::new(scope, jti, exp, now)], Vec::new())
            .await?
            .is_none())
    }

    /// Deletes the jti rows whose `exp < now`, [`PURGE_CHUNK`] at a time
    /// ([`Store::purge_in_chunks`]); returns how many.
    pub async fn purge_expired_jti(&self, now: i64) -> Result<u64, StoreError> {
        const DELETE: &str = "DELETE FROM jti WHERE key IN \
             (SELECT key FROM jti WHERE exp < $1 ORDER BY exp LIMIT $2)";
        self.purge_in_chunks(DELETE, now).await
    }

    /// Runs `delete` (whose `$1` is `now` and `$2` the most rows it may delete) until it
    /// deletes fewer than [`PURGE_CHUNK`] rows; returns how many it deleted in all.
    ///
    /// Why in chunks: one statement that deletes every expired row holds the database's write
    /// lock (SQLite's, for the whole file) until it is done, and every grant's commit waits. A
    /// jti purge of 357,468 rows took 1.2 s in a load benchmark, and the group commit behind it
    /// kept 32 grants waiting as long; a service issuing 10,000 tokens a second finds 3 million
    /// expired every 300 s. A chunk holds the lock for a millisecond or two; after each, the
    /// purge sleeps as long as the chunk took (at least [`PURGE_PAUSE`]), so the commits get
    /// the lock at least half the time while a purge runs.
    ///
    /// The chunk's size: deleting 368,000 expired of 400,000 jti rows in a copy of the table
    /// (SQLite, 2 KiB pages) took 1.14 s in one statement, and 3.4–4.1 s in chunks of 100 to
    /// 8,000 rows, each chunk a median 0.6 (100 rows), 1.6 (250), 6.7 (500), 20 (2,000) and
    /// 73 ms (8,000). The total hardly depends on the chunk: the rows of a chunk are spread
    /// over the whole random index on `key`, so every chunk writes most of its pages again,
    /// whatever its size (the tokens' random index on `hash` is the same). A small chunk keeps
    /// each wait short; at 250 rows a chunk (~1.6 ms, then as long a pause), a purge deletes
    /// ~80,000 rows a second: the 4.5 million jtis that 300 s at 15,000 grants a second leave
    /// take about a minute.
    ///
    /// Each chunk picks its rows `ORDER BY` the expiry, so that both databases walk the index on
    /// it from the start: without it, PostgreSQL chose a sequential scan (most rows had
    /// expired), which in each chunk passes again over the rows the chunks before it deleted
    /// (3.15 s against 4.08 s for the 368,000 rows above, one transaction a chunk, and worse
    /// the larger the purge).
    async fn purge_in_chunks(&self, delete: &str, now: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        loop {
            let began = std::time::Instant::now();
            let deleted = execute!(self, delete, now, PURGE_CHUNK)?;
            purged += deleted;
            if deleted < PURGE_CHUNK as u64 {
                return Ok(purged);
            }
            tokio::time::sleep(began.elapsed().max(PURGE_PAUSE)).await;
        }
    }

    /// A small key-value table for server-wide settings shared by hosts (e.g. the super admin
    /// password hash). Inserts `value` unless `key` is already set, and returns the value
    /// stored afterwards — so two hosts racing agree on one value.
    pub async fn setting_get_or_insert(
        &self,
        key: &str,
        value: &str,
    ) -> Result<String, StoreError> {
        const INSERT: &str =
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
        execute!(self, INSERT, key, value)?;
        self.setting(key)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// The value of setting `key`, if set.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        const SELECT: &str = "SELECT value FROM settings WHERE key = $1";
        let row: Option<(String,)> = with_pool!(self, pool => {
            sqlx::query_as(SELECT).bind(key).fetch_optional(pool).await
        })?;
        Ok(row.map(|(value,)| value))
    }
}

#[cfg(test)]
pub(crate) mod tests;
