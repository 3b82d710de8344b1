//! Group commit for token inserts, the one write every grant makes.
//!
//! Concurrent [`Store::insert_tokens`](super::Store::insert_tokens) calls queue their rows to one
//! writer task, which takes whatever is queued (up to [`MAX_ROWS`]) and stores it with a single
//! multi-row `INSERT` — one statement, one commit — then answers every caller. Under load this
//! turns thousands of small transactions (on SQLite, each also fighting for the one write lock,
//! whose busy handler sleeps) into a few hundred larger ones; with no load a batch is one call
//! and costs what a direct insert costs.
//!
//! A caller is answered only after its rows are committed. If a batch fails, each call in it is
//! retried on its own, so one bad call cannot fail its neighbours.

use super::tokens::TokenRecord;
use super::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Rows per statement (12 bind parameters each: far below both backends' limits).
pub const MAX_ROWS: usize = 512;
/// Calls waiting for the writer before callers wait to queue (back-pressure).
const QUEUE: usize = 4096;

struct Job {
    rows: Vec<TokenRecord>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The queue to the writer task.
#[derive(Clone, Debug)]
pub(super) struct TokenWriter {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} rows)", self.rows.len())
    }
}

impl TokenWriter {
    /// Starts the writer for `store` (a handle without a writer: it inserts directly). The task
    /// ends when every [`TokenWriter`] is dropped.
    pub(super) fn start(store: Store) -> TokenWriter {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, queue));
        TokenWriter { jobs }
    }

    /// Queues `rows` and waits until they are committed.
    pub(super) async fn insert(&self, rows: Vec<TokenRecord>) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { rows, done })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn write(store: Store, mut queue: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut rows = first.rows.len();
        batch.push(first);
        while rows < MAX_ROWS {
            match queue.try_recv() {
                Ok(job) => {
                    rows += job.rows.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let all: Vec<&TokenRecord> = batch.iter().flat_map(|j| j.rows.iter()).collect();
        match store.insert_token_rows(&all).await {
            Ok(()) => {
                for job in batch.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                let job = batch.pop().expect("one job");
                let _ = job.done.send(Err(e));
            }
            Err(_) => {
                for job in batch.drain(..) {
                    let rows: Vec<&TokenRecord> = job.rows.iter().collect();
                    let _ = job.done.send(store.insert_token_rows(&rows).await);
                }
            }
        }
    }
}
