//! Group commit for the writes every grant makes: the replay checks of its assertions' `jti`s,
//! its tokens, and the rotation of the refresh token it redeems.
//!
//! Concurrent calls queue their work to one writer, which takes whatever is queued (up to
//! [`MAX_ROWS`] rows) and does it in one transaction — each rotation's conditional `UPDATE`,
//! the jtis in queue order, then the new tokens (the rotations' successors among them, and
//! only those of calls whose jtis were all fresh) — then answers every caller. A grant's jtis
//! and tokens are one call, so a grant costs one commit, not two. On SQLite that also
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
//! the first time, and hosts sharing a database still decide through its unique key. A jti
//! that was fresh stays recorded even when another jti of its call was not. If a
//! batch fails, each call in it is retried on its own, so one bad call cannot fail its
//! neighbours.

use super::sqlite_writer::SqliteWriter;
use super::tokens::{Rotation, TokenRecord, TokenRow};
use super::{JtiRecord, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Rows per batch (a token row has 12 bind parameters: far below both backends' limits).
pub const MAX_ROWS: usize = 512;
/// Calls waiting for the writer before callers wait to queue (back-pressure).
const QUEUE: usize = 4096;

enum Work {
    /// The jtis, then — if every one was fresh — the tokens.
    Issue(Issue),
    Rotate(Rotation),
}

/// Jtis to check and record, and the tokens to store if all of them were fresh.
#[derive(Debug)]
pub(super) struct Issue {
    pub jtis: Vec<JtiRecord>,
    pub tokens: Vec<TokenRecord>,
}

/// What a batch's transaction found, in order: each issue's first used jti (`None`: its
/// tokens are stored) and each rotated token's row (`None`: it was not live).
pub(super) type Outcome = (Vec<Option<usize>>, Vec<Option<TokenRow>>);

/// What a job's caller is told once its batch is committed.
#[derive(Debug)]
struct Answer {
    /// Of an issue: the first of its jtis that had been used, so that no token was stored
    /// (`None`: all were fresh and the tokens are stored).
    used: Option<usize>,
    /// Of a rotation: the refresh token's row as it was revoked (`None`: it was not live).
    rotated: Option<Box<TokenRow>>,
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
    /// Upkeep once a batch's callers have their answers: an SQLite writer restarts a long WAL.
    fn after_answers(&mut self) {
        if let Committer::Sqlite(writer) = self {
            writer.restart_wal_if_long();
        }
    }

    /// One batch in one transaction; the answer of each job, in order.
    async fn commit(&mut self, batch: &[Job]) -> Result<Vec<Answer>, StoreError> {
        let mut issues = Vec::new();
        let mut rotations = Vec::new();
        for job in batch {
            match &job.work {
                Work::Issue(issue) => issues.push(issue),
                Work::Rotate(rotation) => rotations.push(rotation),
            }
        }
        let (used, rotated) = match self {
            Committer::Pool(store) => store.write_batch(&issues, &rotations).await?,
            Committer::Sqlite(writer) => writer.write_batch(&issues, &rotations)?,
        };
        let (mut used, mut rotated) = (used.into_iter(), rotated.into_iter());
        Ok(batch
            .iter()
            .map(|job| match job.work {
                Work::Issue(_) => Answer {
                    used: used.next().flatten(),
                    rotated: None,
                },
                Work::Rotate(_) => Answer {
                    used: None,
                    rotated: rotated.next().flatten().map(Box::new),
                },
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

    /// Queues `issue` and waits until it is committed: `None` when its tokens are stored,
    /// `Some(i)` when its jti `i` had been used.
    pub(super) async fn issue(&self, issue: Issue) -> Result<Option<usize>, StoreError> {
        Ok(self.run(Work::Issue(issue)).await?.used)
    }

    /// Queues a refresh rotation and waits until it is committed (or found not live).
    pub(super) async fn rotate(&self, rotation: Rotation) -> Result<Option<TokenRow>, StoreError> {
        Ok(self
            .run(Work::Rotate(rotation))
            .await?
            .rotated
            .map(|row| *row))
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
        Work::Issue(issue) => issue.jtis.len() + issue.tokens.len(),
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
                committer.after_answers();
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
