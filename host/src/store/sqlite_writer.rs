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

use super::batch::{Issue, Outcome};
use super::clients::to_json;
use super::tokens::{insert_sql, rotate_sql, Rotation, TokenRecord, TokenRow};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::Path;

/// One jti of a batch (see [`super::Store::check_and_store_jti`]): stored when new or when the
/// row it meets has expired (`exp < now`); one changed row means fresh.
const JTI_SQL: &str = "INSERT INTO jti (scope, jti, exp) VALUES ($1, $2, $3) \
     ON CONFLICT (scope, jti) DO UPDATE SET exp = excluded.exp WHERE jti.exp < $4";

/// The writer's connection.
pub(super) struct SqliteWriter {
    conn: Connection,
    /// `INSERT INTO tokens` of one row.
    insert: String,
    /// [`rotate_sql`].
    rotate: String,
}

impl SqliteWriter {
    /// Opens the (already migrated) database file with `pragmas` (`open.rs` owns the
    /// settings of every connection to the file).
    pub(super) fn open<'a>(
        path: &Path,
        busy_timeout: std::time::Duration,
        pragmas: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<SqliteWriter, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy_timeout)?;
        let pragmas: String = pragmas
            .into_iter()
            .map(|(name, value)| format!("PRAGMA {name} = {value};"))
            .collect();
        conn.execute_batch(&pragmas)?;
        Ok(SqliteWriter {
            conn,
            insert: insert_sql(1),
            rotate: rotate_sql(),
        })
    }

    /// [`super::Store::write_batch`] on this connection: the rotations, then each issue's
    /// jtis and — if all were fresh — its tokens, then the successors of the rotations that
    /// found their token live — one transaction, all or nothing.
    pub(super) fn write_batch(
        &mut self,
        issues: &[&Issue],
        rotations: &[&Rotation],
    ) -> Result<Outcome, rusqlite::Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
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
                    let fresh = upsert.execute(params![j.scope, j.jti, j.exp, j.now])? == 1;
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
        tx.commit()?;
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
mod tests {
    use super::*;

    #[test]
    fn the_pragmas_it_is_given_are_in_force() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.db");
        Connection::open(&path).expect("create the file");
        let writer = SqliteWriter::open(
            &path,
            std::time::Duration::from_secs(1),
            [
                ("journal_mode", "WAL"),
                ("synchronous", "NORMAL"),
                ("cache_size", "-16384"),
                ("wal_autocheckpoint", "2000"),
                ("temp_store", "memory"),
            ],
        )
        .expect("open");
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
        assert_eq!(get("wal_autocheckpoint"), "2000");
        assert_eq!(get("temp_store"), "2");
    }
}
