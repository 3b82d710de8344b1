//! Turning a URL into a migrated connection pool, one function per backend.

use std::ffi::c_int;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::ffi;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, PgConnection};

use super::sqlite_writer::{SqliteWriter, WalLength};
use super::{StoreError, StoreOptions};

/// The SQLite schema, embedded at compile time.
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL schema, embedded at compile time.
///
/// Several hosts may start at once against one database. sqlx's migrator holds a PostgreSQL
/// advisory lock (`pg_advisory_lock`, keyed on the database name) while it checks and applies
/// migrations, so exactly one host migrates and the others wait, then find nothing to do.
/// That locking is on by default; do not call `set_locking(false)`.
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long an SQLite statement waits for another connection's write lock.
pub(super) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `sqlite::memory:`, `sqlite://:memory:` or `…?mode=memory`.
fn sqlite_is_memory(url: &str) -> bool {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

/// SQLite page cache per pooled (reading) connection, and for the one writer (negative: KiB).
/// A reader's cache is emptied whenever the writer has committed since its last read (WAL
/// mode checks that at the start of each read), so under load it holds little more than the
/// pages of one lookup; 16 readers of 2 MiB each were a third of the server's RSS.
///
/// The writer's cache is kept small too, because a larger one costs time at every commit: when
/// a page split reorders pages, SQLite briefly renumbers one to the lock-byte page (262,145),
/// and the commit after it then walks the whole page-cache hash table to drop pages past the
/// end of the file (`pcache1TruncateUnsafe`: 11 % of the writer's CPU with 16 MiB). The pages a
/// batch writes are the ends of the indexes, where new keys land, and the random leaves of the
/// jti index, which are in the OS page cache anyway; 4 MiB was as fast as 16 MiB for the
/// client_credentials and jwt-bearer loads, with 14 MiB less resident memory.
const READER_CACHE_KIB: &str = "-512";
const WRITER_CACHE_KIB: &str = "-4096";

/// What every connection to a database file is set to, the pool's and the writer's alike.
const FILE_PRAGMAS: [(&str, &str); 6] = [
    // Pages of 2 KiB, not SQLite's 4 KiB: a commit writes every page it touched whole — the
    // random leaf of the jti index each grant lands on, the ends of the other indexes — so
    // smaller pages are fewer bytes per grant: −25 % written to storage for client_credentials,
    // private_key_jwt and JWT bearer grants alike, for the same CPU time (2026-12-05,
    // `bench/load.sh`). The keys in our indexes are far below the 488 bytes a 2 KiB index page
    // keeps inline. Only a new file takes it (it must come first); an existing one keeps its
    // page size.
    ("page_size", "2048"),
    ("foreign_keys", "ON"),
    ("journal_mode", "WAL"),
    ("synchronous", "NORMAL"),
    ("journal_size_limit", "67108864"),
    // Statement journals (a multi-row statement inside a transaction keeps one) in memory,
    // not in a temporary file created and deleted for every batch.
    ("temp_store", "memory"),
];

/// How often a background task copies the WAL into the database (`PASSIVE`: beside the writer,
/// never blocking it), and how long the WAL may grow (frames, one page each) before the writer
/// restarts it. Each restart stalls the writer — and every request waiting for its next commit —
/// for a checkpoint of what the background has not copied yet and two fsyncs; 8,000 frames
/// (32 MiB) gave +10 % jwt-bearer grants/s over 2,000, and 16,000 no more throughput but a longer
/// p99 (32,000: 17 ms). The stall is what sets the JWT grants' p99: at ~15k private_key_jwt
/// grants/s the writer restarts ~6 times a second, and with a pass every 20 ms each restart took
/// 5.2 ms (median) and p99 was 6.3 ms; every 5 ms, 2.2–2.4 ms and p99 4.0–4.3 ms (jwt-bearer 6.8 →
/// 4.5 ms; client_credentials 1.7 → 1.5 ms), for the same grants/s and CPU within the noise
/// (2026-12-04, with pages of 4 KiB; with 2 KiB a grant writes ~1.5 times as many frames but
/// 25 % fewer bytes, so restarts come more often with less to copy each: p99 unchanged within
/// the noise).
///
/// What all of it costs, against a WAL left to grow for a 10 s run (no passes, no restarts; it
/// cannot ship): 16–22 µs of a jwt-bearer grant's ~95 µs of server CPU (the passes' copies, their
/// fsyncs and the restarts), 13–22 % fewer grants/s and +0.7 ms of p99 (2026-12-06). Half the bytes
/// a grant writes are the database's pages, mostly the random jti leaf it dirtied: a 4 KiB block.
/// Without restarts but with the passes, one such run's p99 was 65 ms.
const BACKGROUND_CHECKPOINT_EVERY: Duration = Duration::from_millis(5);
/// How often once a pass found nothing new to copy: an idle server checks 50 times a second,
/// not 200.
const IDLE_CHECKPOINT_EVERY: Duration = Duration::from_millis(20);
const WRITER_CHECKPOINT_PAGES: u32 = 8000;

/// The pool, and for a database file the group-commit writer's own connection: SQLite drops a
/// connection's page cache whenever another connection has written, so a writer that took any
/// pooled connection would re-read its pages for every batch; one connection of its own keeps
/// them (and runs on the writer's thread, see [`super::sqlite_writer`]).
pub(super) async fn sqlite(
    url: &str,
    opts: &StoreOptions,
) -> Result<(SqlitePool, Option<SqliteWriter>), StoreError> {
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::open(url, e))?
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let pool_opts = SqlitePoolOptions::new().acquire_timeout(opts.acquire_timeout);

    let memory = sqlite_is_memory(url);
    let (connect, pool_opts) = if memory {
        // An in-memory database lives exactly as long as a connection to it: keep a single
        // one forever, so the schema and the data stay visible.
        let pool_opts = pool_opts
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        (connect, pool_opts)
    } else {
        if let Some(dir) = connect
            .get_filename()
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                let reason = if e.kind() == std::io::ErrorKind::AlreadyExists {
                    format!("{} exists and is not a directory", dir.display())
                } else {
                    format!("cannot create directory {}: {e}", dir.display())
                };
                StoreError::open(url, reason)
            })?;
        }
        // WAL lets readers proceed while one connection writes; with WAL, synchronous=NORMAL
        // is still safe against corruption and only risks the last commits on power loss.
        // Checkpoints (copying the WAL back into the database, with an fsync) run in two
        // places: a background task copies what the WAL holds every 5 ms beside the writer
        // ([`background_checkpoints`]), and once the WAL passes WRITER_CHECKPOINT_PAGES the
        // group-commit writer restarts it ([`SqliteWriter::restart_wal_if_long`]). Only a
        // checkpoint that finds nothing being appended, and no reader left in the WAL, lets
        // the WAL start over; under steady load only the writer can arrange such a moment (a
        // background checkpoint alone let the WAL grow to 15 GB after a million tokens). It
        // does so between batches, after answering the callers, with `RESTART`, which waits
        // out the readers: SQLite's own autocheckpoint ran inside a commit that every waiting
        // request waited for, and, as readers were always in the WAL, it seldom let the WAL
        // start over, so every commit past the limit checkpointed again (15 ms each, 28 % of
        // the writer's time). The other connections never checkpoint on their own. After a
        // restart the file is cut back to `journal_size_limit`.
        let connect = FILE_PRAGMAS
            .iter()
            .fold(connect.create_if_missing(true), |c, (name, value)| {
                c.pragma(*name, *value)
            })
            .pragma("wal_autocheckpoint", "0")
            // Readers look up a few hot rows (clients, IdPs, a token): a small page cache
            // each, since a pool holds up to `max_connections` of them; the writer's is larger.
            .pragma("cache_size", READER_CACHE_KIB);
        (
            connect,
            pool_opts.max_connections(opts.max_connections.max(1)),
        )
    };

    let pool_opts = pool_opts.after_connect(|conn, _| {
        Box::pin(async move {
            let mut handle = conn.lock_handle().await?;
            define_jti_key(handle.as_raw_handle().as_ptr().cast())
                .map_err(|e| sqlx::Error::Configuration(e.into()))
        })
    });
    let pool = connect_sqlite(&pool_opts, &connect)
        .await
        .map_err(|e| StoreError::open(url, e))?;
    migrate_sqlite(&pool).await?;
    if memory {
        return Ok((pool, None));
    }
    let writer_pragmas = FILE_PRAGMAS.into_iter().chain([
        ("cache_size", WRITER_CACHE_KIB),
        ("wal_autocheckpoint", "0"),
    ]);
    let wal = Arc::new(WalLength::default());
    let writer = SqliteWriter::open(
        connect.get_filename(),
        writer_pragmas,
        wal.clone(),
        WRITER_CHECKPOINT_PAGES,
    )
    .map_err(|e| StoreError::open(url, e))?;
    let database =
        std::fs::File::open(connect.get_filename()).map_err(|e| StoreError::open(url, e))?;
    tokio::spawn(background_checkpoints(
        pool.clone(),
        wal,
        Arc::new(database),
    ));
    Ok((pool, Some(writer)))
}

/// Copies what the WAL holds into the database every [`BACKGROUND_CHECKPOINT_EVERY`] (every
/// [`IDLE_CHECKPOINT_EVERY`] once there is nothing new), on a
/// reading connection, beside the writer, and reports the WAL's length for the writer to
/// restart it ([`SqliteWriter::restart_wal_if_long`]); ends when the pool is closed.
///
/// It also syncs the database file after each pass that copied something. SQLite syncs it only
/// after a checkpoint that copied the whole WAL, which under load only the writer's restart
/// does: the pages of every pass since the last restart were left for the restart's fsync, which
/// the writer (and every request waiting on its next commit) sat in for 14 ms at the start of a
/// 20 s jwt-bearer run and 43 ms at its end, mostly waiting for writeback. Synced here, beside
/// the writer, they leave that fsync little to do: p99 32 → 19 ms, throughput −3 %.
async fn background_checkpoints(
    pool: SqlitePool,
    wal: Arc<WalLength>,
    database: Arc<std::fs::File>,
) {
    // The frames the last pass found copied into the database; a pass that reports another
    // number copied more (or found the WAL started over), so the file has pages to sync.
    let mut last_copied = 0;
    let mut every = IDLE_CHECKPOINT_EVERY;
    let mut began = tokio::time::Instant::now();
    loop {
        // A pass begins `every` after the last one began, or when it ends if it took longer.
        tokio::time::sleep_until(began + every).await;
        began = tokio::time::Instant::now();
        if pool.is_closed() {
            return;
        }
        let epoch = wal.epoch();
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok((_, frames, copied)) => {
                wal.report(epoch, frames);
                every = IDLE_CHECKPOINT_EVERY;
                if copied != last_copied {
                    every = BACKGROUND_CHECKPOINT_EVERY;
                    last_copied = copied;
                    let database = database.clone();
                    if let Ok(Err(e)) =
                        tokio::task::spawn_blocking(move || database.sync_data()).await
                    {
                        tracing::warn!("SQLite database sync failed: {e}");
                    }
                }
            }
            Err(_) if pool.is_closed() => return,
            Err(e) => tracing::warn!("SQLite checkpoint failed: {e}"),
        }
    }
}

/// Defines the SQL function `tollgate_jti_key(scope, jti)` on an SQLite connection: the jti
/// table's key ([`super::jti_key`]) of a stored scope and jti, for migration 0005.
fn define_jti_key(db: *mut ffi::sqlite3) -> Result<(), String> {
    unsafe extern "C" fn call(
        ctx: *mut ffi::sqlite3_context,
        argc: c_int,
        argv: *mut *mut ffi::sqlite3_value,
    ) {
        // SAFETY: SQLite passes `argc` (2, as defined) values, each valid during the call;
        // the text pointer of a value is valid for `sqlite3_value_bytes` bytes (asked after
        // it, as SQLite requires) until the value changes. The key is copied
        // (SQLITE_TRANSIENT) before it goes out of scope.
        unsafe {
            let bytes = |i: usize| {
                let value = *argv.add(i);
                let text = ffi::sqlite3_value_text(value);
                let len = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
                (!text.is_null()).then(|| std::slice::from_raw_parts(text, len))
            };
            match (argc == 2).then(|| (bytes(0), bytes(1))) {
                Some((Some(scope), Some(jti))) => {
                    let key = super::jti_key_of(scope, jti);
                    ffi::sqlite3_result_blob(
                        ctx,
                        key.as_ptr().cast(),
                        key.len() as c_int,
                        ffi::SQLITE_TRANSIENT(),
                    );
                }
                _ => ffi::sqlite3_result_null(ctx),
            }
        }
    }
    // SAFETY: `db` is an open connection that nothing else uses meanwhile (sqlx's lock on
    // it); the name is a NUL-terminated literal and `call` has the signature SQLite expects.
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            c"tollgate_jti_key".as_ptr(),
            2,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC,
            std::ptr::null_mut(),
            Some(call),
            None,
            None,
            None,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(format!(
            "cannot define tollgate_jti_key (SQLite error {rc})"
        ))
    }
}

/// Attempts at the first connection, and at the migrations, of several hosts starting at once.
const START_ATTEMPTS: u32 = 5;

/// Runs `op` until it succeeds, fails with an error `retry` refuses, or [`START_ATTEMPTS`] are
/// spent, sleeping 100 ms more after each failed attempt.
async fn at_start<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    retry: impl Fn(&E) -> bool,
    mut op: impl FnMut() -> F,
) -> Result<T, E> {
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < START_ATTEMPTS && retry(&e) => {
                tracing::debug!("SQLite {what} attempt {attempt} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The pool's first connection. Several hosts starting at once on a new file each switch it to
/// WAL, which takes an exclusive lock that SQLite refuses at once, without waiting, while
/// another connection holds a shared one (waiting could deadlock): "database is locked" (1 in
/// 20 runs of `sqlite_concurrent_first_opens_all_succeed`). A later attempt finds the file in
/// WAL already, which needs no such lock.
async fn connect_sqlite(
    pool_opts: &SqlitePoolOptions,
    connect: &SqliteConnectOptions,
) -> Result<SqlitePool, sqlx::Error> {
    let locked =
        |e: &sqlx::Error| matches!(e, sqlx::Error::Database(e) if e.code().as_deref() == Some("5"));
    at_start("connection", locked, || {
        pool_opts.clone().connect_with(connect.clone())
    })
    .await
}

/// sqlx takes no lock around SQLite migrations, so two processes starting at once on a new file
/// can both decide to apply migration 1, and the second fails ("table already exists") once the
/// first commits. Running the migrator again then finds the migration applied. A few attempts,
/// spaced out, settle any such race; a real error fails every attempt and is reported.
async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    at_start("migration", |_| true, || SQLITE_MIGRATOR.run(pool))
        .await
        .map_err(|e| StoreError::Migrate(e.to_string()))
}

pub(super) async fn postgres(url: &str, opts: &StoreOptions) -> Result<PgPool, StoreError> {
    let connect = PgConnectOptions::from_str(url).map_err(|e| StoreError::open(url, e))?;

    // Migrate on a connection of its own, without the statement timeout: waiting for another
    // host's migration (the advisory lock) or building an index may well take longer than a
    // request is allowed to. Connecting directly rather than through the pool also reports a
    // refused connection at once instead of retrying until the acquire timeout.
    let mut conn = tokio::time::timeout(opts.acquire_timeout, PgConnection::connect_with(&connect))
        .await
        .map_err(|_| StoreError::open(url, "timed out connecting"))?
        .map_err(|e| StoreError::open(url, e))?;
    let migrated = POSTGRES_MIGRATOR.run(&mut conn).await;
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing the migration connection");
    }
    migrated.map_err(|e| StoreError::Migrate(e.to_string()))?;

    let statement_timeout = opts.statement_timeout.as_millis().to_string();
    PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(connect.options([("statement_timeout", statement_timeout.as_str())]))
        .await
        .map_err(|e| StoreError::open(url, e))
}

#[cfg(test)]
mod tests {
    use super::sqlite_is_memory;

    #[test]
    fn recognises_in_memory_sqlite() {
        assert!(sqlite_is_memory("sqlite::memory:"));
        assert!(sqlite_is_memory("sqlite://:memory:"));
        assert!(sqlite_is_memory("sqlite://x.db?mode=memory&cache=shared"));
        assert!(!sqlite_is_memory("sqlite:///var/lib/tollgate/t.db"));
        assert!(!sqlite_is_memory("sqlite://relative/memory.db"));
    }
}
