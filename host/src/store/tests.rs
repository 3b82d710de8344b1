//! The store's behaviour, checked on both backends.
//!
//! Each case in `on_both_backends!` runs against a fresh SQLite file in a temporary directory
//! and, when `TOLLGATE_TEST_POSTGRES_URL` names an admin URL, against a fresh PostgreSQL
//! database created for that test alone (and dropped afterwards, even when the test fails).

use std::path::Path;

use sqlx::{Connection, Executor, PgConnection};
use tokio::task::JoinSet;

use super::*;

const PG_ENV: &str = "TOLLGATE_TEST_POSTGRES_URL";

pub(crate) struct Fixture {
    pub(crate) url: String,
    pub(crate) store: Store,
    // Declared last so it is dropped after `store` has let go of its connections.
    _guard: Guard,
}

impl Fixture {
    /// The database file of an SQLite fixture.
    pub(crate) fn sqlite_file(&self) -> &str {
        self.url.trim_start_matches("sqlite://")
    }
}

enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Pg(#[allow(dead_code)] PgDb),
}

pub(crate) async fn sqlite_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    // A parent that does not exist yet: open must create it.
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/tollgate.db").display()
    );
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open sqlite");
    Fixture {
        url,
        store,
        _guard: Guard::Dir(dir),
    }
}

pub(crate) async fn postgres_fixture() -> Option<Fixture> {
    let db = PgDb::create().await?;
    let url = db.url.clone();
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open postgres");
    Some(Fixture {
        url,
        store,
        _guard: Guard::Pg(db),
    })
}

/// A database of its own on the server named by `TOLLGATE_TEST_POSTGRES_URL`.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    /// `None` (the test is skipped) when the variable is unset.
    async fn create() -> Option<PgDb> {
        let Ok(admin) = std::env::var(PG_ENV) else {
            eprintln!("skipped: {PG_ENV} is not set");
            return None;
        };
        let name = format!("tollgate_test_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to the admin database");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        Some(PgDb {
            url: with_database(&admin, &name),
            admin,
            name,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Drop may run on a runtime thread or while unwinding; use a runtime of its own.
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                conn.execute(sql.as_str()).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// `admin` with its database replaced by `db`.
fn with_database(admin: &str, db: &str) -> String {
    let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
    let (scheme, rest) = base.split_once("://").expect("admin URL has a scheme");
    let authority = rest.split('/').next().unwrap_or(rest);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{scheme}://{authority}/{db}{query}")
}

async fn count(store: &Store, sql: &str) -> i64 {
    let (n,): (i64,) = with_pool!(store, pool => sqlx::query_as(sql).fetch_one(pool).await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    n
}

fn migration_files(backend: &str) -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let files = std::fs::read_dir(dir).expect("migrations directory");
    files
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "sql"))
        })
        .count() as i64
}

/// What this thread logs while the guard lives, as the server's log would show it
/// ([`LogLines::text`]); a future polled on this thread logs here too.
pub(crate) fn capture_log() -> (tracing::subscriber::DefaultGuard, LogLines) {
    let lines = LogLines::default();
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (tracing::subscriber::set_default(subscriber), lines)
}

/// What `f` logs ([`capture_log`]).
pub(crate) fn logged(f: impl FnOnce()) -> String {
    let (guard, lines) = capture_log();
    f();
    drop(guard);
    lines.text()
}

/// The log lines [`capture_log`] captured.
#[derive(Clone, Default)]
pub(crate) struct LogLines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogLines {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl std::io::Write for LogLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Spawns `n` copies of `f(store)` at once and collects their results.
pub(crate) async fn concurrently<T, F, Fut>(store: &Store, n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Store, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for i in 0..n {
        tasks.spawn(f(store.clone(), i));
    }
    tasks.join_all().await
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(&super::sqlite_fixture().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(fx) = super::postgres_fixture().await else { return };
                    super::$case(&fx).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

on_both_backends!(
    open_migrates_and_reopens,
    ping_and_backend,
    tenant_is_created_once,
    tenant_concurrent_ensure_makes_one_row,
    jti_replay_check,
    jti_expired_row_is_replaced,
    jti_purge_counts,
    jti_purge_takes_several_chunks,
    jti_concurrent_check_stores_once,
    commits_are_counted,
    setting_keeps_first_value,
);

async fn open_migrates_and_reopens(fx: &Fixture) {
    let backend = fx.store.backend();
    let applied = count(&fx.store, "SELECT COUNT(*) FROM _sqlx_migrations").await;
    assert_eq!(applied, migration_files(backend));
    for table in ["tenants", "jti", "settings"] {
        assert_eq!(
            count(&fx.store, &format!("SELECT COUNT(*) FROM {table}")).await,
            0
        );
    }
    fx.store.ensure_tenant("kept", 7).await.expect("ensure");

    let again = Store::open(&fx.url, &StoreOptions::default())
        .await
        .expect("reopen");
    assert_eq!(again.backend(), backend);
    assert_eq!(
        count(&again, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        applied
    );
    let kept = again.tenant("kept").await.expect("tenant");
    assert_eq!(kept.map(|t| t.created_at), Some(7));
    again.close().await;
}

async fn ping_and_backend(fx: &Fixture) {
    fx.store.ping().await.expect("ping");
    assert!(["sqlite", "postgres"].contains(&fx.store.backend()));
}

async fn tenant_is_created_once(fx: &Fixture) {
    let store = &fx.store;
    assert_eq!(store.tenant("acme").await.expect("tenant"), None);
    let acme = store.ensure_tenant("acme", 1_000).await.expect("ensure");
    assert_eq!((acme.name.as_str(), acme.created_at), ("acme", 1_000));
    // A second call finds the same tenant; its `now` does not touch created_at.
    assert_eq!(
        store.ensure_tenant("acme", 2_000).await.expect("ensure"),
        acme
    );
    assert_eq!(
        store.tenant("acme").await.expect("tenant"),
        Some(acme.clone())
    );
    let other = store.ensure_tenant("other", 3_000).await.expect("ensure");
    assert_ne!(other.id, acme.id);
}

async fn tenant_concurrent_ensure_makes_one_row(fx: &Fixture) {
    let tenants = concurrently(&fx.store, 20, |store, i| async move {
        store.ensure_tenant("race", i as i64).await
    })
    .await;
    let first = tenants[0].as_ref().expect("ensure").clone();
    for tenant in tenants {
        assert_eq!(tenant.expect("ensure"), first);
    }
    let rows = count(
        &fx.store,
        "SELECT COUNT(*) FROM tenants WHERE name = 'race'",
    )
    .await;
    assert_eq!(rows, 1);
}

async fn jti_replay_check(fx: &Fixture) {
    let store = &fx.store;
    assert!(store
        .check_and_store_jti("t1", "a", 200, 100)
        .await
        .expect("first"));
    assert!(!store
        .check_and_store_jti("t1", "a", 200, 101)
        .await
        .expect("replay"));
    assert!(!store
        .check_and_store_jti("t1", "a", 999, 150)
        .await
        .expect("replay, new exp"));
    assert!(store
        .check_and_store_jti("t2", "a", 200, 100)
        .await
        .expect("other scope"));
    assert!(store
        .check_and_store_jti("t1", "b", 200, 100)
        .await
        .expect("other jti"));
}

async fn jti_expired_row_is_replaced(fx: &Fixture) {
    let store = &fx.store;
    assert!(store
        .check_and_store_jti("s", "j", 100, 50)
        .await
        .expect("first"));
    // exp == now: not yet past, still a replay.
    assert!(!store
        .check_and_store_jti("s", "j", 200, 100)
        .await
        .expect("at exp"));
    // Past exp: the row is replaced, with the new exp …
    assert!(store
        .check_and_store_jti("s", "j", 300, 101)
        .await
        .expect("expired"));
    // … which is what guards from now on.
    assert!(!store
        .check_and_store_jti("s", "j", 400, 250)
        .await
        .expect("replay"));
    let exp = count(&fx.store, "SELECT exp FROM jti").await;
    assert_eq!(exp, 300);
}

async fn jti_purge_counts(fx: &Fixture) {
    let store = &fx.store;
    for (jti, exp) in [("a", 10), ("b", 20), ("c", 30)] {
        assert!(store
            .check_and_store_jti("s", jti, exp, 0)
            .await
            .expect("store"));
    }
    assert_eq!(store.purge_expired_jti(25).await.expect("purge"), 2);
    assert_eq!(store.purge_expired_jti(25).await.expect("purge again"), 0);
    assert!(!store
        .check_and_store_jti("s", "c", 99, 25)
        .await
        .expect("kept"));
    assert!(store
        .check_and_store_jti("s", "a", 99, 25)
        .await
        .expect("purged"));
}

async fn jti_purge_takes_several_chunks(fx: &Fixture) {
    let store = &fx.store;
    let expired = 2 * PURGE_CHUNK as usize + 1;
    let jtis = (0..expired)
        .map(|i| JtiRecord::new("s", &format!("old-{i}"), 10, 0))
        .chain((0..3).map(|i| JtiRecord::new("s", &format!("live-{i}"), 100, 0)))
        .collect();
    assert_eq!(
        store.insert_tokens(jtis, Vec::new()).await.expect("store"),
        None
    );
    assert_eq!(
        store.purge_expired_jti(50).await.expect("purge"),
        expired as u64
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM jti").await, 3);
    assert_eq!(store.purge_expired_jti(50).await.expect("again"), 0);
}

async fn jti_concurrent_check_stores_once(fx: &Fixture) {
    let results = concurrently(&fx.store, 50, |store, _| async move {
        store.check_and_store_jti("scope", "same", 1_000, 500).await
    })
    .await;
    let stored = results
        .into_iter()
        .map(|r| r.expect("check_and_store_jti"))
        .filter(|stored| *stored)
        .count();
    assert_eq!(stored, 1);
}

/// The store's group-commit counters as `/metrics` shows them: calls committed, commits timed,
/// and failed commits.
pub(crate) fn commit_figures(store: &Store) -> (f64, u64, u64, u64) {
    let mut metrics = crate::metrics::Metrics::default();
    metrics.register_commits(store.commit_metrics().expect("a writer"));
    let text = metrics.render();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .parse()
            .expect("a number")
    };
    (
        value("tollgate_store_commit_calls_sum"),
        value("tollgate_store_commit_calls_count") as u64,
        value("tollgate_store_commit_seconds_count") as u64,
        value("tollgate_store_commit_failures_total") as u64,
    )
}

async fn commits_are_counted(fx: &Fixture) {
    let (calls, commits, timed, failures) = commit_figures(&fx.store);
    concurrently(&fx.store, 40, |store, i| async move {
        store
            .check_and_store_jti("scope", &format!("counted-{i}"), 1_000, 500)
            .await
            .expect("check_and_store_jti")
    })
    .await;
    let after = commit_figures(&fx.store);
    assert_eq!(after.0 - calls, 40.0, "every call is counted once");
    let new_commits = after.1 - commits;
    assert!((1..=40).contains(&new_commits), "{new_commits} commits");
    assert_eq!(after.2 - timed, new_commits, "each commit is timed");
    assert_eq!(after.3, failures, "none failed");
}

async fn setting_keeps_first_value(fx: &Fixture) {
    let store = &fx.store;
    assert_eq!(store.setting("admin").await.expect("setting"), None);
    assert_eq!(
        store
            .setting_get_or_insert("admin", "h1")
            .await
            .expect("insert"),
        "h1"
    );
    assert_eq!(
        store
            .setting_get_or_insert("admin", "h2")
            .await
            .expect("get"),
        "h1"
    );
    assert_eq!(
        store.setting("admin").await.expect("setting").as_deref(),
        Some("h1")
    );

    let values = concurrently(store, 20, |store, i| async move {
        store.setting_get_or_insert("race", &format!("v{i}")).await
    })
    .await;
    let first = values[0].as_ref().expect("insert").clone();
    for value in values {
        assert_eq!(value.expect("insert"), first);
    }
}

#[tokio::test]
async fn sqlite_in_memory_keeps_schema_and_data() {
    let store = Store::open("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("open in-memory");
    let tenant = store.ensure_tenant("mem", 1).await.expect("ensure");
    assert_eq!(store.tenant("mem").await.expect("tenant"), Some(tenant));
    assert!(store
        .check_and_store_jti("s", "j", 10, 0)
        .await
        .expect("store"));
    assert!(!store
        .check_and_store_jti("s", "j", 10, 0)
        .await
        .expect("replay"));
}

fn assert_open_error(result: Result<Store, StoreError>, url: &str) -> String {
    let err = result.expect_err("open must fail");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        msg.starts_with(&format!("cannot open database {url}: ")),
        "{msg}"
    );
    assert!(
        msg.len() > format!("cannot open database {url}: ").len(),
        "{msg}"
    );
    msg
}

#[tokio::test]
async fn sqlite_unopenable_path_is_open_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let under_file = format!("sqlite://{}/x.db", file.display());
    let msg = assert_open_error(
        Store::open(&under_file, &StoreOptions::default()).await,
        &under_file,
    );
    assert!(
        msg.contains("a-file exists and is not a directory"),
        "{msg}"
    );

    let url = "sqlite:///proc/nope/x.db";
    assert_open_error(Store::open(url, &StoreOptions::default()).await, url);
}

#[tokio::test]
async fn unsupported_scheme_is_open_error() {
    let url = "mysql://u@localhost/x";
    let msg = assert_open_error(Store::open(url, &StoreOptions::default()).await, url);
    assert!(msg.contains("unsupported URL scheme"), "{msg}");
}

/// Needs no server: nothing listens on port 1.
#[tokio::test]
async fn postgres_unreachable_is_open_error_without_password() {
    let url = "postgres://u:secret@127.0.0.1:1/x";
    let result = Store::open(url, &StoreOptions::default()).await;
    let err = result.as_ref().err().map(|e| format!("{e} {e:?}"));
    assert!(!err.unwrap_or_default().contains("secret"));
    assert_open_error(result, "postgres://u:***@127.0.0.1:1/x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_open_migrates_once() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let opts = StoreOptions::default();
    let (a, b) = tokio::join!(Store::open(&db.url, &opts), Store::open(&db.url, &opts));
    let (a, b) = (a.expect("first open"), b.expect("second open"));
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        migration_files("postgres")
    );
    let t = a.ensure_tenant("shared", 1).await.expect("ensure");
    assert_eq!(b.tenant("shared").await.expect("tenant"), Some(t));
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn postgres_statement_timeout_applies() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let opts = StoreOptions {
        statement_timeout: Duration::from_millis(1_234),
        ..StoreOptions::default()
    };
    let store = Store::open(&db.url, &opts).await.expect("open");
    let (timeout,): (String,) = with_pool!(store, pool => {
        sqlx::query_as("SHOW statement_timeout").fetch_one(pool).await
    })
    .expect("SHOW");
    assert_eq!(timeout, "1234ms");
    store.close().await;
}

/// Several servers starting at once on one new SQLite file (sqlx takes no lock around SQLite
/// migrations): every one must open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_first_opens_all_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let options = StoreOptions::default();
    // Concurrent in one task: SQLite's connections do their work on threads of their own.
    let opens = futures::future::join_all((0..8).map(|_| Store::open(&url, &options))).await;
    for store in opens {
        store.expect("opens").ping().await.expect("pings");
    }
}

/// The migrations of `all` before `version`.
fn before(all: sqlx::migrate::Migrator, version: i64) -> sqlx::migrate::Migrator {
    sqlx::migrate::Migrator {
        migrations: all
            .migrations
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..all
    }
}

/// A server of today opening an SQLite database that one of before migration `version` made
/// and filled with `old_rows` (SQL).
async fn sqlite_upgraded(version: i64, old_rows: &str, dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
        .expect("url")
        .create_if_missing(true);
    let old = sqlx::SqlitePool::connect_with(options).await.expect("old");
    before(sqlx::migrate!("./migrations/sqlite"), version)
        .run(&old)
        .await
        .expect("the earlier migrations");
    sqlx::raw_sql(old_rows)
        .execute(&old)
        .await
        .expect("old rows");
    old.close().await;
    Store::open(&url, &StoreOptions::default())
        .await
        .expect("upgrade")
}

/// The same on PostgreSQL, in `db`.
async fn postgres_upgraded(version: i64, old_rows: &str, db: &PgDb) -> Store {
    let mut old = PgConnection::connect(&db.url).await.expect("old");
    before(sqlx::migrate!("./migrations/postgres"), version)
        .run(&mut old)
        .await
        .expect("the earlier migrations");
    sqlx::raw_sql(old_rows)
        .execute(&mut old)
        .await
        .expect("old rows");
    old.close().await.expect("close");
    Store::open(&db.url, &StoreOptions::default())
        .await
        .expect("upgrade")
}

/// The SQL that made the table or index `name`.
async fn schema_of(store: &Store, name: &str) -> String {
    let (sql,): (String,) = with_pool!(store, pool => {
        sqlx::query_as("SELECT sql FROM sqlite_schema WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await
    })
    .expect("schema");
    sql
}

/// The key is the stored format (migration 0005 computes it in SQL): pinned here; two pairs
/// that concatenate alike get different keys.
#[test]
fn jti_keys_are_a_digest_of_the_scope_length_scope_and_jti() {
    assert_eq!(
        hex::encode(jti_key("sä", "early")),
        "5eec89c67b96af8ca3876b742fec33ee"
    );
    assert_ne!(jti_key("ab", "c"), jti_key("a", "bc"));
}

/// jti rows as the tables before 0005 held them: scope and jti as text. A scope of more bytes
/// than characters checks that each backend's key counts bytes as `jti_key` does.
const OLD_JTIS: &str =
    "INSERT INTO jti (scope, jti, exp) VALUES ('sä', 'early', 100), ('sä', 'late', 300)";

/// What [`OLD_JTIS`] must still do after an upgrade: replays of them are refused, and they
/// still expire.
async fn old_jtis_stay_used(store: &Store) {
    for jti in ["early", "late"] {
        assert!(
            !store
                .check_and_store_jti("sä", jti, 400, 50)
                .await
                .expect("check"),
            "{jti} is used"
        );
    }
    assert!(store
        .check_and_store_jti("sä", "new", 400, 50)
        .await
        .expect("check"));
    assert_eq!(store.purge_expired_jti(200).await.expect("purge"), 1);
    assert!(store
        .check_and_store_jti("sä", "early", 400, 250)
        .await
        .expect("expired, so fresh"));
}

/// A database made before 0003 (the jti table WITHOUT ROWID) keeps its used jtis across the
/// upgrade.
#[tokio::test]
async fn sqlite_jti_rows_survive_the_move_to_a_rowid_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_upgraded(3, OLD_JTIS, &dir).await;
    let jti = schema_of(&store, "jti").await;
    assert!(
        !jti.contains("WITHOUT ROWID"),
        "jti is a rowid table now: {jti}"
    );
    old_jtis_stay_used(&store).await;
    store.close().await;
}

/// A database made before 0005 (scope and jti stored as text) keeps its used jtis across the
/// move to one key: SQLite's `tollgate_jti_key` and PostgreSQL's SQL compute `jti_key`.
#[tokio::test]
async fn sqlite_jti_rows_survive_the_move_to_one_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_upgraded(5, OLD_JTIS, &dir).await;
    old_jtis_stay_used(&store).await;
    // An existing file keeps its page size (SQLite's default here), and works with it.
    assert_eq!(count(&store, "PRAGMA page_size").await, 4096);
    store.close().await;
}

/// A new file gets pages of 2 KiB (`open.rs`, FILE_PRAGMAS), the writer's connection too.
#[tokio::test]
async fn a_new_sqlite_file_has_pages_of_2_kib() {
    let fx = sqlite_fixture().await;
    assert_eq!(count(&fx.store, "PRAGMA page_size").await, 2048);
    assert!(fx
        .store
        .check_and_store_jti("s", "j", 10, 0)
        .await
        .expect("the writer stores"));
    let header = std::fs::read(fx.sqlite_file()).expect("the database file");
    assert_eq!(header[16..18], [8, 0], "page size in the file header");
}

#[tokio::test]
async fn postgres_jti_rows_survive_the_move_to_one_key() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let store = postgres_upgraded(5, OLD_JTIS, &db).await;
    old_jtis_stay_used(&store).await;
    store.close().await;
}

/// A database made before 0004 (every token in the index on families) keeps its families across
/// the upgrade to the partial index: revoking an old refresh token still revokes the access
/// token issued with it, and nothing else.
#[tokio::test]
async fn sqlite_families_stored_before_the_partial_index_are_still_revoked_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_upgraded(
        4,
        "INSERT INTO tokens (hash, tenant, kind, client_id, subject, scope, family, issued_at, \
         expires_at, revoked, format, claims) VALUES \
         ('a', 't', 'access', 'c', 's', NULL, 'f1', 0, 100, 0, 'opaque', '{}'), \
         ('r', 't', 'refresh', 'c', 's', NULL, 'f1', 0, 100, 0, 'opaque', '{}'), \
         ('b', 't', 'access', 'c', 's', NULL, 'f2', 0, 100, 0, 'opaque', '{}')",
        &dir,
    )
    .await;
    let index = schema_of(&store, "tokens_family").await;
    assert!(index.contains("WHERE family <> ''"), "{index}");
    assert!(store.revoke_token("r", "t", "c").await.expect("revoke"));
    for (hash, revoked) in [("a", true), ("r", true), ("b", false)] {
        let token = store.token(hash).await.expect("read").expect("stored");
        assert_eq!(token.revoked, revoked, "{hash}");
    }
    store.close().await;
}
