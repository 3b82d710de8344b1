//! Group commit for the writes every grant makes: its tokens, the replay check of its
//! assertion's `jti`, and the rotation of the refresh token it redeems.
//!
//! Concurrent calls queue their work to one writer, which takes whatever is queued (up to
//! [`MAX_ROWS`] token rows) and does it in one transaction — each rotation's conditional
//! `UPDATE`, then the new tokens (the rotations' successors among them) in one multi-row
//! `INSERT`, then the jtis in queue order — then answers every caller. On SQLite that also
//! makes the writer the only connection that writes: a rotation in a transaction of its own
//! would wait for the write lock in SQLite's busy handler, which sleeps (p99 of 750 ms under
//! load, before rotations came here). Under load this turns
//! thousands of small transactions (on SQLite, each also fighting for the one write lock,
//! whose busy handler sleeps) into a few hundred larger ones; with no load a batch is one call
//! and costs what a direct write costs.
//!
//! For an SQLite file the writer is a thread of its own that owns the one connection that
//! writes ([`super::sqlite_writer`]) and runs each batch on it without a thread hop per
//! statement; for PostgreSQL (and in-memory SQLite) it is a task that runs the batch through
//! the pool. Both run the same loop ([`write`]).
//!
//! A caller is answered only after its work is committed. Jti checks keep their meaning: each
//! is the same one-statement upsert as alone, so a jti seen twice in one batch is fresh only
//! the first time, and hosts sharing a database still decide through its unique key. If a
//! batch fails, each call in it is retried on its own, so one bad call cannot fail its
//! neighbours.

use super::sqlite_writer::SqliteWriter;
use super::tokens::{Rotation, TokenRecord, TokenRow};
use super::{JtiRecord, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Token rows per batch (12 bind parameters each: far below both backends' limits).
pub const MAX_ROWS: usize = 512;
/// Calls waiting for the writer before callers wait to queue (back-pressure).
const QUEUE: usize = 4096;

enum Work {
    Tokens(Vec<TokenRecord>),
    Jti(JtiRecord),
    Rotate(Rotation),
}

/// What a job's caller is told once its batch is committed.
#[derive(Debug)]
enum Answer {
    Stored,
    /// Whether the jti was fresh.
    Jti(bool),
    /// The refresh token's row as it was revoked, or `None`: it was not live.
    Rotated(Option<Box<TokenRow>>),
}

struct Job {
    work: Work,
    done: oneshot::Sender<Result<Answer, StoreError>>,
}

/// Where the writer commits its batches.
pub(super) enum Committer {
    /// Through this store's pool (a handle without a writer: it writes directly).
    Pool(Store),
    /// On the writer's own SQLite connection.
    Sqlite(SqliteWriter),
}

impl Committer {
    /// One batch in one transaction; the answer of each job, in order.
    async fn commit(&mut self, batch: &[Job]) -> Result<Vec<Answer>, StoreError> {
        let mut tokens = Vec::new();
        let mut jtis = Vec::new();
        let mut rotations = Vec::new();
        for job in batch {
            match &job.work {
                Work::Tokens(rows) => tokens.extend(rows.iter()),
                Work::Jti(jti) => jtis.push(jti),
                Work::Rotate(rotation) => rotations.push(rotation),
            }
        }
        let (fresh, rotated) = match self {
            Committer::Pool(store) => store.write_batch(&tokens, &jtis, &rotations).await?,
            Committer::Sqlite(writer) => writer.write_batch(&tokens, &jtis, &rotations)?,
        };
        let (mut fresh, mut rotated) = (fresh.into_iter(), rotated.into_iter());
        Ok(batch
            .iter()
            .map(|job| match job.work {
                Work::Tokens(_) => Answer::Stored,
                Work::Jti(_) => Answer::Jti(fresh.next().unwrap_or(false)),
                Work::Rotate(_) => Answer::Rotated(rotated.next().flatten().map(Box::new)),
            })
            .collect())
    }
}

/// The queue to the writer.
#[derive(Clone, Debug)]
pub(super) struct TokenWriter {
    jobs: mpsc::Sender<Job>,
    /// The writer's own pool, if it has one, to close its connections at shutdown.
    store: Option<Box<Store>>,
}

impl TokenWriter {
    /// Starts the writer: a task on the current runtime, or for SQLite's own connection a
    /// thread (whose SQLite calls block it, which a runtime worker must not be). It ends when
    /// every [`TokenWriter`] is dropped.
    pub(super) fn start(committer: Committer) -> std::io::Result<TokenWriter> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let store = match committer {
            Committer::Pool(ref store) => {
                let store = Box::new(store.clone());
                tokio::spawn(write(committer, queue));
                Some(store)
            }
            Committer::Sqlite(_) => {
                std::thread::Builder::new()
                    .name("tollgate-writer".into())
                    .spawn(move || futures::executor::block_on(write(committer, queue)))?;
                None
            }
        };
        Ok(TokenWriter { jobs, store })
    }

    /// Closes the writer's pool (its SQLite connection closes when the thread ends).
    pub(super) async fn close(&self) {
        if let Some(store) = &self.store {
            store.close().await
        }
    }

    /// Queues `rows` and waits until they are committed.
    pub(super) async fn insert(&self, rows: Vec<TokenRecord>) -> Result<(), StoreError> {
        self.run(Work::Tokens(rows)).await.map(|_| ())
    }

    /// Queues a jti check and waits for its committed verdict.
    pub(super) async fn check_jti(&self, jti: JtiRecord) -> Result<bool, StoreError> {
        Ok(matches!(self.run(Work::Jti(jti)).await?, Answer::Jti(true)))
    }

    /// Queues a refresh rotation and waits until it is committed (or found not live).
    pub(super) async fn rotate(&self, rotation: Rotation) -> Result<Option<TokenRow>, StoreError> {
        match self.run(Work::Rotate(rotation)).await? {
            Answer::Rotated(row) => Ok(row.map(|row| *row)),
            _ => Ok(None),
        }
    }

    async fn run(&self, work: Work) -> Result<Answer, StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { work, done })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn rows(job: &Job) -> usize {
    match &job.work {
        Work::Tokens(rows) => rows.len(),
        Work::Jti(_) => 1,
        Work::Rotate(rotation) => 1 + rotation.successors.len(),
    }
}

async fn write(mut committer: Committer, mut queue: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut size = rows(&first);
        batch.push(first);
        while size < MAX_ROWS {
            match queue.try_recv() {
                Ok(job) => {
                    size += rows(&job);
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        match committer.commit(&batch).await {
            Ok(answers) => {
                for (job, answer) in batch.drain(..).zip(answers) {
                    let _ = job.done.send(Ok(answer));
                }
            }
            Err(e) if batch.len() == 1 => {
                let job = batch.pop().expect("one job");
                let _ = job.done.send(Err(e));
            }
            Err(_) => {
                for job in batch.drain(..) {
                    let answer = committer
                        .commit(std::slice::from_ref(&job))
                        .await
                        .map(|mut a| a.remove(0));
                    let _ = job.done.send(answer);
                }
            }
        }
    }
}
