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
//! A commit on an SQLite file takes a fraction of a millisecond, so under load batches stayed
//! small (two or three grants) and each commit wrote the same few pages at the end of every
//! index again. So, like PostgreSQL's `commit_delay`, the SQLite writer waits
//! [`COMMIT_DELAY`] for more when it finds at least [`COMMIT_SIBLINGS`] calls queued — a sign
//! that others are on their way — and never when a call comes alone. A PostgreSQL commit waits
//! for a round trip and an fsync, long enough for batches to fill by themselves.
//!
//! The wait is short because every caller of the batch waits it too, and a load of a fixed
//! number of connections sends nothing new while its requests wait. With 200 µs, 32
//! connections of client_credentials left 40 % of a two-core machine idle, every request
//! waiting for a commit; 50 µs gave +25–33 % req/s there (idle 24 %) and, within the noise,
//! the same or better for the JWT grants, whose requests spend longer on the CPU between
//! commits (2026-12-03, `bench/load.sh`'s idle share). Without any wait, batches are smaller
//! and each grant writes more of the WAL: a JWT bearer grant cost the machine 25 % more CPU.
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
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Rows per batch (a token row has 12 bind parameters: far below both backends' limits).
pub const MAX_ROWS: usize = 512;
/// Calls waiting for the writer before callers wait to queue (back-pressure).
const QUEUE: usize = 4096;
/// How long the SQLite writer waits for more calls when it found [`COMMIT_SIBLINGS`] queued.
const COMMIT_DELAY: Duration = Duration::from_micros(50);
/// Calls queued together that make the SQLite writer wait [`COMMIT_DELAY`] for more.
const COMMIT_SIBLINGS: usize = 2;
/// A commit that takes longer is logged: every caller in its batch waited for it (commits
/// usually take well under a millisecond on SQLite, a few on PostgreSQL).
const SLOW_COMMIT: Duration = Duration::from_millis(250);

/// What the writer counts (registered in [`crate::metrics::Metrics`]): how well batches fill,
/// and what a commit costs, which every grant waits for.
#[derive(Clone, Debug)]
pub struct CommitMetrics {
    /// Calls (grants, rotations) per commit: 1, 2, 4 … 512.
    pub calls: Histogram,
    /// How long each commit took: 50 µs … ~1.6 s.
    pub seconds: Histogram,
    /// Commits that failed (a batch of several calls is then committed call by call).
    pub failures: Counter,
}

impl Default for CommitMetrics {
    fn default() -> Self {
        CommitMetrics {
            calls: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            failures: Counter::default(),
        }
    }
}

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
    /// The answer, and the work itself: its strings were allocated on the caller's thread and
    /// are freed there. Freed on the writer's thread, each free took the lock of the caller's
    /// malloc arena while the caller allocated from it (glibc's lock waits were 7 % of a
    /// private_key_jwt grant's CPU; half that after; +3–11 % req/s in A/B).
    done: oneshot::Sender<(Result<Answer, StoreError>, Work)>,
}

/// Where the writer commits its batches.
pub(super) enum Committer {
    /// Through this store's pool (a handle without a writer: it writes directly).
    Pool(Store),
    /// On the writer's own SQLite connection.
    Sqlite(SqliteWriter),
}

impl Committer {
    /// How long to wait for more calls once [`COMMIT_SIBLINGS`] are queued, if at all. Only the
    /// SQLite writer waits: it is a thread of its own, which the wait blocks.
    fn commit_delay(&self) -> Option<Duration> {
        match self {
            Committer::Sqlite(_) => Some(COMMIT_DELAY),
            Committer::Pool(_) => None,
        }
    }

    /// Upkeep once a batch's callers have their answers: an SQLite writer restarts a long WAL.
    fn after_answers(&mut self) {
        if let Committer::Sqlite(writer) = self {
            writer.restart_wal_if_long();
        }
    }

    /// One batch in one transaction, counted in `metrics`; the answer of each job, in order.
    async fn commit(
        &mut self,
        batch: &[Job],
        metrics: &CommitMetrics,
    ) -> Result<Vec<Answer>, StoreError> {
        let began = Instant::now();
        let outcome = self.transaction(batch).await;
        let took = began.elapsed();
        metrics.seconds.observe(took.as_secs_f64());
        if took > SLOW_COMMIT {
            let phases = match self {
                Committer::Sqlite(writer) => format!(" ({})", writer.phases),
                Committer::Pool(_) => String::new(),
            };
            tracing::warn!(
                "a group commit of {} calls took {} ms{phases}; every one of them waited for it",
                batch.len(),
                took.as_millis(),
            );
        }
        metrics.calls.observe(batch.len() as f64);
        if outcome.is_err() {
            metrics.failures.inc();
        }
        outcome
    }

    async fn transaction(&mut self, batch: &[Job]) -> Result<Vec<Answer>, StoreError> {
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
    metrics: CommitMetrics,
    /// The writer's own pool, if it has one, to close its connections at shutdown.
    store: Option<Box<Store>>,
}

impl TokenWriter {
    /// Starts the writer: a task on the current runtime, or for SQLite's own connection a
    /// thread (whose SQLite calls block it, which a runtime worker must not be). It ends when
    /// every [`TokenWriter`] is dropped.
    pub(super) fn start(committer: Committer) -> std::io::Result<TokenWriter> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let metrics = CommitMetrics::default();
        let counted = metrics.clone();
        let store = match committer {
            Committer::Pool(ref store) => {
                let store = Box::new(store.clone());
                tokio::spawn(write(committer, queue, counted));
                Some(store)
            }
            Committer::Sqlite(_) => {
                std::thread::Builder::new()
                    .name("tollgate-writer".into())
                    .spawn(move || futures::executor::block_on(write(committer, queue, counted)))?;
                None
            }
        };
        Ok(TokenWriter {
            jobs,
            metrics,
            store,
        })
    }

    pub(super) fn metrics(&self) -> &CommitMetrics {
        &self.metrics
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
        let (answer, _work) = answer.await.map_err(|_| StoreError::Closed)?;
        answer
    }
}

fn rows(job: &Job) -> usize {
    match &job.work {
        Work::Issue(issue) => issue.jtis.len() + issue.tokens.len(),
        Work::Rotate(rotation) => 1 + rotation.successors.len(),
    }
}

/// Adds to `batch` (which holds `first`) what is queued, up to [`MAX_ROWS`] rows; when that
/// makes [`COMMIT_SIBLINGS`] calls and there is room, sleeps `delay` and adds what came since.
fn gather(
    queue: &mut mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
    first: Job,
    delay: Option<Duration>,
) {
    let mut size = rows(&first);
    batch.push(first);
    let mut take_queued = |batch: &mut Vec<Job>| {
        while size < MAX_ROWS {
            match queue.try_recv() {
                Ok(job) => {
                    size += rows(&job);
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        size < MAX_ROWS
    };
    let room = take_queued(batch);
    if let Some(delay) = delay.filter(|_| room && batch.len() >= COMMIT_SIBLINGS) {
        std::thread::sleep(delay);
        take_queued(batch);
    }
}

async fn write(mut committer: Committer, mut queue: mpsc::Receiver<Job>, metrics: CommitMetrics) {
    let mut batch: Vec<Job> = Vec::new();
    while let Some(first) = queue.recv().await {
        gather(&mut queue, &mut batch, first, committer.commit_delay());
        match committer.commit(&batch, &metrics).await {
            Ok(answers) => {
                for (job, answer) in batch.drain(..).zip(answers) {
                    let _ = job.done.send((Ok(answer), job.work));
                }
                committer.after_answers();
            }
            Err(e) if batch.len() == 1 => {
                let job = batch.pop().expect("one job");
                let _ = job.done.send((Err(e), job.work));
            }
            Err(e) => {
                // One call's failure fails them all: each alone gets its own outcome.
                tracing::warn!(error = %e, calls = batch.len(), "a batch's commit failed; committing its calls one by one");
                for job in batch.drain(..) {
                    let answer = committer
                        .commit(std::slice::from_ref(&job), &metrics)
                        .await
                        .map(|mut a| a.remove(0));
                    let _ = job.done.send((answer, job.work));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn job(jtis: usize) -> Job {
        let jti = JtiRecord::new("s", "j", 0, 0);
        Job {
            work: Work::Issue(Issue {
                jtis: vec![jti; jtis],
                tokens: Vec::new(),
            }),
            done: oneshot::channel().0,
        }
    }

    /// The delay is long (two seconds) so that the test cannot pass by luck on a slow machine.
    const LONG: Option<Duration> = Some(Duration::from_secs(2));

    #[test]
    fn a_lone_call_is_committed_without_waiting() {
        let (_jobs, mut queue) = mpsc::channel(QUEUE);
        let mut batch = Vec::new();
        let start = Instant::now();
        gather(&mut queue, &mut batch, job(1), LONG);
        assert_eq!(batch.len(), 1);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn siblings_wait_for_calls_on_their_way() {
        let (jobs, mut queue) = mpsc::channel(QUEUE);
        jobs.try_send(job(1)).expect("queued");
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            jobs.try_send(job(1)).expect("queued");
        });
        let mut batch = Vec::new();
        gather(&mut queue, &mut batch, job(1), LONG);
        late.join().expect("sender");
        assert_eq!(batch.len(), 3);
    }

    #[test]
    fn a_full_batch_neither_waits_nor_grows_past_max_rows() {
        let (jobs, mut queue) = mpsc::channel(QUEUE);
        for _ in 0..4 {
            jobs.try_send(job(MAX_ROWS / 2)).expect("queued");
        }
        let mut batch = Vec::new();
        let start = Instant::now();
        gather(&mut queue, &mut batch, job(MAX_ROWS / 2), LONG);
        assert_eq!(batch.len(), 2);
        assert!(start.elapsed() < Duration::from_secs(1));
        let mut batch = Vec::new();
        let first = queue.try_recv().expect("still queued");
        gather(&mut queue, &mut batch, first, None);
        assert_eq!(batch.len(), 2, "without a delay, what is queued");
    }

    /// What `committer` logs committing a quick batch, then one that waits for the write lock,
    /// which another connection to the SQLite file at `path` holds past [`SLOW_COMMIT`].
    async fn log_of_a_slow_commit(committer: &mut Committer, path: &str) -> (String, String) {
        let metrics = CommitMetrics::default();
        let (guard, quick) = crate::store::tests::capture_log();
        committer.commit(&[job(1)], &metrics).await.expect("commit");
        drop(guard);

        let other = rusqlite::Connection::open(path).expect("open");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let release = std::thread::spawn(move || {
            std::thread::sleep(SLOW_COMMIT + Duration::from_millis(150));
            other.execute_batch("COMMIT").expect("commit");
        });
        let (guard, slow) = crate::store::tests::capture_log();
        let answers = committer
            .commit(&[job(1), job(1)], &metrics)
            .await
            .expect("the commit waits for the lock");
        drop(guard);
        release.join().expect("other");
        assert_eq!(answers.len(), 2);
        (quick.text(), slow.text())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_commit_is_logged_with_its_duration() {
        let fixture = crate::store::tests::sqlite_fixture().await;
        let (quick, slow) = log_of_a_slow_commit(
            &mut Committer::Pool(fixture.store.clone()),
            fixture.sqlite_file(),
        )
        .await;
        assert_eq!(quick, "", "a quick commit says nothing");
        assert!(
            slow.contains("WARN") && slow.contains("a group commit of 2 calls took"),
            "{slow:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_sqlite_writer_says_where_a_slow_commit_waited() {
        let fixture = crate::store::tests::sqlite_fixture().await;
        let path = fixture.sqlite_file();
        let writer =
            crate::store::sqlite_writer::tests::open(path.as_ref(), Default::default(), u32::MAX);
        let (quick, slow) = log_of_a_slow_commit(&mut Committer::Sqlite(writer), path).await;
        assert_eq!(quick, "", "a quick commit says nothing");
        // "… took N ms (L ms waiting for the write lock, S ms in statements, C ms committing)"
        let waited: u128 = slow
            .split(" ms waiting for the write lock")
            .next()
            .and_then(|before| before.rsplit('(').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no lock wait in {slow:?}"));
        assert!(waited >= SLOW_COMMIT.as_millis(), "{slow:?}");
        assert!(
            slow.contains("a group commit of 2 calls took") && slow.contains("ms committing"),
            "{slow:?}"
        );
    }
}
