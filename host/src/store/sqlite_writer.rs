//! The group-commit writer's connection to an SQLite file: synchronous, on the writer's own
//! thread ([`super::batch`]).
//!
//! Why not sqlx here: sqlx runs each SQLite connection on a thread of its own and every
//! statement is a message to that thread and an answer back — two thread wake-ups per
//! statement, which on a loaded machine cost more than the statement. Every grant waits for
//! the writer's commit, so that latency was the bound on grants per second: the writer was
//! "busy" all the time while its SQLite thread worked half of it and the CPUs idled. Here the
//! writer thread is the connection's thread; a batch is one transaction of prepared statements
//! (cached) run back to back. Everything else — reads, migrations, PostgreSQL — stays on sqlx;
//! the statements are the SQL of [`super::Store::write_batch`], one row per execution.
//!
//! The connection opens the file through [`super::wal_buffer`], which hands each commit's WAL
//! frames to the kernel in one write.

use super::batch::{Issue, Outcome};
use super::clients::to_json;
use super::tokens::{insert_sql, rotate_sql, Rotation, TokenRecord, TokenRow};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One jti of a batch (see [`super::Store::check_and_store_jti`]): stored when new or when the
/// row it meets has expired (`exp < now`); one changed row means fresh.
const JTI_SQL: &str = "INSERT INTO jti (key, exp) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET exp = excluded.exp WHERE jti.exp < $3";

/// The writer's connection.
pub(super) struct SqliteWriter {
    conn: Connection,
    /// `INSERT INTO tokens` of one row.
    insert: String,
    /// [`rotate_sql`].
    rotate: String,
    /// The WAL's length, as the background checkpoints last saw it (`open.rs`).
    wal: Arc<WalLength>,
    /// At this many frames the writer checkpoints and restarts the WAL.
    restart_at: u32,
    /// Where the last batch's time went.
    pub(super) phases: Phases,
}

/// Where a batch's time went, for the slow commit warning ([`super::batch`]): it tells a wait
/// for the lock from slow statements (reading pages that neither SQLite's cache nor the
/// kernel's holds) and from a slow commit (writing the WAL).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Phases {
    /// `BEGIN IMMEDIATE`: waiting for the write lock.
    pub(super) lock: Duration,
    /// The statements.
    pub(super) statements: Duration,
    /// `COMMIT`: the WAL frames written.
    pub(super) commit: Duration,
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ms waiting for the write lock, {} ms in statements, {} ms committing",
            self.lock.as_millis(),
            self.statements.as_millis(),
            self.commit.as_millis()
        )
    }
}

/// The WAL's length as the background checkpoints find it, for the writer to act on
/// ([`SqliteWriter::restart_wal_if_long`]). A report counts only if its checkpoint began after
/// the writer's last restart: one that began before would report the WAL long still, and the
/// writer would restart it — and stall — a second time.
#[derive(Debug, Default)]
pub(super) struct WalLength {
    /// Restarts the writer has made (wrapping).
    restarts: AtomicU32,
    /// The last report: the restarts when its checkpoint began (high half) and the frames the
    /// checkpoint found in the WAL (low half).
    report: AtomicU64,
}

impl WalLength {
    /// Taken before a checkpoint, to [`WalLength::report`] its outcome with.
    pub(super) fn epoch(&self) -> u32 {
        self.restarts.load(Ordering::Acquire)
    }

    /// A checkpoint that began at `epoch` found `frames` frames in the WAL.
    pub(super) fn report(&self, epoch: u32, frames: i64) {
        let frames = u32::try_from(frames.max(0)).unwrap_or(u32::MAX);
        self.report.store(
            u64::from(epoch) << 32 | u64::from(frames),
            Ordering::Release,
        );
    }

    /// The frames the last report since the last restart found (0: none since).
    fn frames(&self) -> u32 {
        let report = self.report.load(Ordering::Acquire);
        let (epoch, frames) = ((report >> 32) as u32, report as u32);
        if epoch == self.restarts.load(Ordering::Acquire) {
            frames
        } else {
            0
        }
    }

    fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::AcqRel);
    }
}

/// How long the writer sleeps between tries of a lock another connection holds: the default
/// busy handler sleeps 1, 2, 5, 10 … ms, far longer than the checkpoints and the admin writes
/// it waits for take.
const BUSY_SLEEP: Duration = Duration::from_micros(100);
/// Tries before a lock is given up (SQLITE_BUSY): as long as the pool's connections wait.
const BUSY_TRIES: i32 =
    (super::open::SQLITE_BUSY_TIMEOUT.as_micros() / BUSY_SLEEP.as_micros()) as i32;

/// A WAL restart that takes longer is logged (restarts usually take 1–5 ms).
const SLOW_RESTART: Duration = Duration::from_millis(100);

fn busy(tries: i32) -> bool {
    std::thread::sleep(BUSY_SLEEP);
    tries < BUSY_TRIES
}

impl SqliteWriter {
    /// Opens the (already migrated) database file with `pragmas` (`open.rs` owns the
    /// settings of every connection to the file).
    pub(super) fn open<'a>(
        path: &Path,
        pragmas: impl IntoIterator<Item = (&'a str, &'a str)>,
        wal: Arc<WalLength>,
        restart_at: u32,
    ) -> Result<SqliteWriter, rusqlite::Error> {
        let conn = Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            super::wal_buffer::register()?,
        )?;
        conn.busy_handler(Some(busy))?;
        // Dirty pages stay in the cache until the commit, however many (a batch's are few): the
        // WAL buffer relies on SQLite writing WAL frames only in a commit.
        let pragmas: String = pragmas
            .into_iter()
            .chain([("cache_spill", "OFF")])
            .map(|(name, value)| format!("PRAGMA {name} = {value};"))
            .collect();
        conn.execute_batch(&pragmas)?;
        Ok(SqliteWriter {
            conn,
            insert: insert_sql(1),
            rotate: rotate_sql(),
            wal,
            restart_at,
            phases: Phases::default(),
        })
    }

    /// Once the WAL has grown past `restart_at` frames, checkpoints what the background
    /// checkpoints have not copied yet and waits for the readers still in the WAL, so that the
    /// next commit writes the WAL from its start again (`PRAGMA wal_checkpoint(RESTART)`).
    /// Runs after a batch's callers are answered, never inside a commit they wait for. If a
    /// background checkpoint holds the checkpoint lock, the next batch tries again.
    ///
    /// Every commit waits while it runs. One that takes longer than [`SLOW_RESTART`] (a reader
    /// that stays in the WAL holds it up, up to the busy timeout) is logged as a warning with
    /// its duration: that stall is what a client sees as a slow or timed-out token request.
    pub(super) fn restart_wal_if_long(&mut self) {
        if self.wal.frames() < self.restart_at {
            return;
        }
        let began = Instant::now();
        let outcome = self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
                row.get::<_, i64>(0)
            });
        let took = began.elapsed();
        let restarted = match outcome {
            Ok(0) => {
                self.wal.restarted();
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!("SQLite checkpoint failed: {e}");
                false
            }
        };
        if took > SLOW_RESTART {
            tracing::warn!(
                "restarting the SQLite WAL held every commit for {} ms (restarted: {restarted})",
                took.as_millis(),
            );
        }
    }

    /// [`super::Store::write_batch`] on this connection: the rotations, then each issue's
    /// jtis and — if all were fresh — its tokens, then the successors of the rotations that
    /// found their token live — one transaction, all or nothing.
    pub(super) fn write_batch(
        &mut self,
        issues: &[&Issue],
        rotations: &[&Rotation],
    ) -> Result<Outcome, rusqlite::Error> {
        self.phases = Phases::default();
        let began = Instant::now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.phases.lock = began.elapsed();
        let mut rotated = Vec::with_capacity(rotations.len());
        let mut successors = Vec::new();
        if !rotations.is_empty() {
            let mut rotate = tx.prepare_cached(&self.rotate)?;
            for r in rotations {
                let row = rotate
                    .query_row(params![r.hash, r.tenant, r.client_id, r.now], token_row)
                    .optional()?;
                if let Some(row) = &row {
                    successors.extend(r.successors_of(row));
                }
                rotated.push(row);
            }
        }
        // The statements borrow the transaction until its commit.
        let used = {
            let mut upsert = tx.prepare_cached(JTI_SQL)?;
            let mut insert = tx.prepare_cached(&self.insert)?;
            let mut store = |t: &TokenRecord| {
                insert.execute(params![
                    t.hash,
                    t.tenant,
                    t.kind.as_str(),
                    t.client_id,
                    t.subject,
                    t.scope,
                    t.family,
                    t.issued_at,
                    t.expires_at,
                    t.revoked,
                    t.format,
                    to_json(&t.claims),
                ])
            };
            let mut used = Vec::with_capacity(issues.len());
            for issue in issues {
                let mut first_used = None;
                for (i, j) in issue.jtis.iter().enumerate() {
                    let fresh = upsert.execute(params![j.key, j.exp, j.now])? == 1;
                    first_used = first_used.or((!fresh).then_some(i));
                }
                if first_used.is_none() {
                    for t in &issue.tokens {
                        store(t)?;
                    }
                }
                used.push(first_used);
            }
            for t in &successors {
                store(t)?;
            }
            used
        };
        self.phases.statements = began.elapsed() - self.phases.lock;
        tx.commit()?;
        self.phases.commit = began.elapsed() - self.phases.lock - self.phases.statements;
        Ok((used, rotated))
    }
}

/// A row of [`rotate_sql`]'s `RETURNING`.
fn token_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A writer on `path`, created if missing.
    pub(in crate::store) fn open(
        path: &Path,
        wal: Arc<WalLength>,
        restart_at: u32,
    ) -> SqliteWriter {
        Connection::open(path).expect("create the file");
        SqliteWriter::open(
            path,
            [
                ("journal_mode", "WAL"),
                ("synchronous", "NORMAL"),
                ("cache_size", "-16384"),
                ("wal_autocheckpoint", "0"),
                ("temp_store", "memory"),
            ],
            wal,
            restart_at,
        )
        .expect("open")
    }

    #[test]
    fn the_pragmas_it_is_given_are_in_force() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.db");
        let writer = open(&path, Arc::default(), 8000);
        let get = |name: &str| -> String {
            writer
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .expect("pragma")
        };
        assert_eq!(get("journal_mode"), "wal");
        assert_eq!(get("synchronous"), "1");
        assert_eq!(get("cache_size"), "-16384");
        assert_eq!(get("wal_autocheckpoint"), "0");
        assert_eq!(get("temp_store"), "2");
        assert_eq!(get("cache_spill"), "0");
    }

    /// Writes `rows` rows of 1 KiB, one transaction each; the frames in the WAL file after.
    /// (With `journal_size_limit` 0, a commit that starts the WAL over cuts the file to its
    /// own frames; the file never shrinks otherwise.)
    fn append(writer: &SqliteWriter, rows: usize) -> u64 {
        for _ in 0..rows {
            writer
                .conn
                .execute("INSERT INTO t (v) VALUES (randomblob(1024))", [])
                .expect("insert");
        }
        let wal = format!("{}-wal", writer.conn.path().expect("a file"));
        let bytes = std::fs::metadata(wal).expect("the WAL").len();
        bytes.saturating_sub(32) / (4096 + 24)
    }

    #[test]
    fn a_long_wal_starts_over_after_the_batch_even_with_a_reader_in_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.db");
        let wal = Arc::new(WalLength::default());
        let mut writer = open(&path, wal.clone(), 100);
        writer
            .conn
            .execute_batch("PRAGMA journal_size_limit = 0; CREATE TABLE t (v BLOB)")
            .expect("create");
        let long = append(&writer, 300);
        assert!(long >= 300, "each commit appends: {long} frames");

        // Below the limit (as the background checkpoints saw it) nothing happens.
        wal.report(wal.epoch(), 99);
        writer.restart_wal_if_long();
        assert!(append(&writer, 1) > long, "the WAL keeps growing");

        // A reader in the middle of a read of the WAL, which it leaves 300 ms later: the
        // restart waits for it (a checkpoint that did not would leave the WAL growing), and
        // says so in the log, since every commit waited with it.
        let reader = Connection::open(&path).expect("open");
        reader.execute_batch("BEGIN").expect("begin");
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("read");
        assert_eq!(seen, 301);
        let leave = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            reader.execute_batch("COMMIT").expect("commit");
        });
        // A checkpoint that began before the restart reports after it: not acted on.
        let before = wal.epoch();
        wal.report(before, 100);
        let log = crate::store::tests::logged(|| writer.restart_wal_if_long());
        assert!(
            log.contains("WARN")
                && log.contains("held every commit for")
                && log.contains("restarted: true"),
            "the stall is logged: {log:?}"
        );
        wal.report(before, 5000);
        assert_eq!(wal.frames(), 0, "a report from before the restart");
        let after = append(&writer, 1);
        leave.join().expect("reader");
        assert!(
            after <= 3,
            "the next commit writes the WAL from its start: {after} frames"
        );
        let rows: i64 = writer
            .conn
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 302, "nothing is lost");
    }

    #[test]
    fn the_writer_waits_for_a_lock_another_connection_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.db");
        let mut writer = open(&path, Arc::default(), 8000);
        writer
            .conn
            .execute("CREATE TABLE t (v BLOB)", [])
            .expect("create");
        let other = Connection::open(&path).expect("open");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            other.execute_batch("COMMIT").expect("commit");
        });
        let tx = writer
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("the writer waits instead of failing with SQLITE_BUSY");
        tx.commit().expect("commit");
        release.join().expect("other");
    }
}
