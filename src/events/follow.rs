//! [`Follow`]: the one way to read the event log as it grows.

use tokio::sync::watch;

use crate::db::events::{self, Event, Filter};
use crate::db::{self, DbError, Pool};

/// Events read from the log at a time.
pub const BATCH: u32 = 500;

/// Why a follower gives no more events.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    /// The server stops.
    #[error("the server stops")]
    Stopping,
    /// The log could not be read (the cursor stays; reading again may succeed).
    #[error("reading the event log failed: {0}")]
    Storage(#[from] DbError),
}

/// Reads the events after a cursor that match a filter, oldest first, and waits
/// for commits when it has read them all. Its cursor moves only when a batch is
/// returned, so dropping a read half way loses nothing; in a `select!` beside
/// other work, race [`Follow::committed`] (which reads nothing) and read after it.
pub struct Follow {
    pool: Pool,
    committed: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    filter: Filter,
    cursor: i64,
    /// Whether the log may hold events after the cursor that were not read yet.
    behind: bool,
}

impl Follow {
    pub(super) fn new(
        pool: Pool,
        committed: watch::Receiver<u64>,
        stopping: watch::Receiver<bool>,
        filter: Filter,
        cursor: i64,
    ) -> Self {
        Follow { pool, committed, stopping, filter, cursor, behind: true }
    }

    /// The last event returned (or the starting point).
    #[must_use]
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The next events after the cursor (at most `BATCH`), waiting for a commit
    /// when there are none.
    ///
    /// # Errors
    /// The server stops, or the log cannot be read.
    pub async fn next(&mut self) -> Result<Vec<Event>, Stopped> {
        loop {
            self.committed().await?;
            let batch = self.unread().await?;
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    /// Waits until the log may hold events after the cursor (at once if it may
    /// already). It reads nothing, so it can be raced in a `select!` at no cost;
    /// read with [`Follow::unread`] after it.
    ///
    /// # Errors
    /// The server stops.
    pub async fn committed(&mut self) -> Result<(), Stopped> {
        loop {
            if *self.stopping.borrow_and_update() {
                return Err(Stopped::Stopping);
            }
            if self.behind {
                return Ok(());
            }
            tokio::select! {
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return Err(Stopped::Stopping);
                    }
                    self.behind = true;
                }
                _ = self.stopping.changed() => {}
            }
        }
    }

    /// The events after the cursor committed so far (at most `BATCH`; empty when
    /// there are none), without waiting.
    ///
    /// # Errors
    /// The server stops, or the log cannot be read.
    pub async fn unread(&mut self) -> Result<Vec<Event>, Stopped> {
        if *self.stopping.borrow_and_update() {
            return Err(Stopped::Stopping);
        }
        // Marked seen before reading: a commit during the read sets `behind` again.
        self.committed.borrow_and_update();
        let batch = self.read().await?;
        self.behind = batch.len() == BATCH as usize;
        if let Some(last) = batch.last() {
            self.cursor = last.seq;
        }
        Ok(batch)
    }

    async fn read(&self) -> Result<Vec<Event>, DbError> {
        let (filter, cursor) = (self.filter.clone(), self.cursor);
        db::run(&self.pool, move |conn| events::after(conn, cursor, &filter, BATCH)).await
    }
}
