//! "Something was committed": the signal that wakes followers of the event log and
//! the webhook dispatcher, raised by SQLite itself after a commit.
//!
//! Every pooled `agents.db` connection carries three hooks. The update hook notes
//! which kind of row the open transaction wrote (an event; a queued delivery or a
//! subscription); the commit hook hands that note to the committing thread; the
//! write-ahead-log hook, which SQLite calls once the commit is durable and its lock
//! released, raises the signal. So no code path can commit an event without waking
//! its followers, and none is woken before what it is woken for can be read.
//! A commit made without its sync (see [`super::Unsynced`]) is announced only once
//! its caller has synced it: [`holding`].

use std::cell::RefCell;
use std::ffi::c_int;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use rusqlite::hooks::{Action, Wal};
use rusqlite::Connection;
use tokio::sync::watch;

/// A transaction appended to the event log.
const LOG: u8 = 1;
/// A transaction queued or requeued a webhook delivery, or changed a subscription.
const QUEUE: u8 = 2;
/// Write-ahead-log pages after which a commit checkpoints (SQLite's own default,
/// which a WAL hook replaces).
const CHECKPOINT_PAGES: c_int = 1000;

/// The signals of one database.
#[derive(Debug)]
pub struct Committed {
    log: watch::Sender<u64>,
    queue: watch::Sender<u64>,
}

impl Default for Committed {
    fn default() -> Self {
        Committed { log: watch::channel(0).0, queue: watch::channel(0).0 }
    }
}

impl Committed {
    /// Changes after every commit that appended events.
    #[must_use]
    pub fn log(&self) -> watch::Receiver<u64> {
        self.log.subscribe()
    }

    /// Changes after every commit that queued a delivery or changed a subscription.
    #[must_use]
    pub fn queue(&self) -> watch::Receiver<u64> {
        self.queue.subscribe()
    }

    fn raise(&self, touched: u8) {
        if touched & LOG != 0 {
            self.log.send_modify(|n| *n = n.wrapping_add(1));
        }
        if touched & QUEUE != 0 {
            self.queue.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// What one connection's open transaction wrote.
type Touched = Arc<AtomicU8>;

/// What a commit wrote, and the signals it raises.
type Raise = (u8, Arc<Committed>);

thread_local! {
    /// The transaction this thread is committing: set by the commit hook, raised by
    /// the WAL hook right after (both run inside the same `COMMIT` on this thread).
    static COMMITTING: RefCell<Option<(Touched, Arc<Committed>)>> = const { RefCell::new(None) };
    /// Inside [`holding`]: what its commits would have raised, held back.
    static HOLDING: RefCell<Option<Option<Raise>>> = const { RefCell::new(None) };
}

/// The signal of commits not yet durable, held back: raised when dropped, which
/// its holder does once it has synced them.
#[must_use = "dropping it raises the signal"]
pub struct Held(Option<Raise>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some((touched, committed)) = self.0.take() {
            committed.raise(touched);
        }
    }
}

/// Runs `commit` (on this thread) with the signals its commits raise held back
/// until the [`Held`] is dropped.
pub fn holding<T>(commit: impl FnOnce() -> T) -> (T, Held) {
    /// Ends the holding even if `commit` panics (raising what it held).
    struct Holding;
    impl Drop for Holding {
        fn drop(&mut self) {
            drop(Held(HOLDING.with(|slot| slot.borrow_mut().take()).flatten()));
        }
    }
    HOLDING.with(|slot| *slot.borrow_mut() = Some(None));
    let guard = Holding;
    let value = commit();
    let held = Held(HOLDING.with(|slot| slot.borrow_mut().take()).flatten());
    drop(guard);
    (value, held)
}

/// Installs the hooks on a connection.
///
/// # Errors
/// A connection SQLite does not let hooks be set on.
pub fn install(conn: &Connection, committed: &Arc<Committed>) -> rusqlite::Result<()> {
    let touched: Touched = Arc::default();
    let noted = touched.clone();
    conn.update_hook(Some(move |action: Action, _db: &str, table: &str, _row: i64| {
        let kind = match (table, action) {
            ("events", Action::SQLITE_INSERT) => LOG,
            ("webhook_deliveries", Action::SQLITE_INSERT | Action::SQLITE_UPDATE)
            | ("webhooks", Action::SQLITE_UPDATE) => QUEUE,
            _ => 0,
        };
        if kind != 0 {
            noted.fetch_or(kind, Ordering::Relaxed);
        }
    }))?;
    let (committing, committed) = (touched.clone(), committed.clone());
    conn.commit_hook(Some(move || {
        if committing.load(Ordering::Relaxed) != 0 {
            COMMITTING.with(|slot| *slot.borrow_mut() = Some((committing.clone(), committed.clone())));
        }
        false // never turn the commit into a rollback
    }))?;
    conn.rollback_hook(Some(move || touched.store(0, Ordering::Relaxed)))?;
    conn.wal_hook(Some(after_commit));
    Ok(())
}

/// SQLite's WAL hook: the commit is durable; raise what it wrote, then checkpoint
/// as SQLite would have without a hook.
fn after_commit(wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    if let Some((touched, committed)) = COMMITTING.with(|slot| slot.borrow_mut().take()) {
        let touched = touched.swap(0, Ordering::Relaxed);
        let unheld = HOLDING.with(|slot| match slot.borrow_mut().as_mut() {
            Some(held) => {
                let kinds = held.as_ref().map_or(0, |(kinds, _)| *kinds);
                *held = Some((kinds | touched, committed.clone()));
                false
            }
            None => true,
        });
        if unheld {
            committed.raise(touched);
        }
    }
    if pages >= CHECKPOINT_PAGES {
        // Passive, as SQLite's automatic checkpoint: never waits, never fails the commit.
        let _ = wal.checkpoint();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path, committed: &Arc<Committed>) -> Connection {
        let conn = Connection::open(dir.join("t.db")).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, data TEXT);
             CREATE TABLE IF NOT EXISTS other (id INTEGER PRIMARY KEY);",
        )
        .expect("schema");
        install(&conn, committed).expect("hooks");
        conn
    }

    #[test]
    fn raised_after_commits_that_append_events_and_only_those() {
        let dir = tempfile::tempdir().expect("tempdir");
        let committed = Arc::new(Committed::default());
        let mut log = committed.log();
        let mut conn = open(dir.path(), &committed);
        let reader = Connection::open(dir.path().join("t.db")).expect("reader");

        conn.execute("INSERT INTO other (id) VALUES (1)", []).expect("insert");
        assert!(!log.has_changed().expect("open"), "a commit without events raises nothing");

        let tx = conn.transaction().expect("tx");
        tx.execute("INSERT INTO events (data) VALUES ('a')", []).expect("insert");
        assert!(!log.has_changed().expect("open"), "nothing before the commit");
        tx.commit().expect("commit");
        assert!(log.has_changed().expect("open"), "raised by the commit");
        log.borrow_and_update();
        let seen: i64 = reader.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).expect("count");
        assert_eq!(seen, 1, "what the signal announces is readable from another connection");

        let tx = conn.transaction().expect("tx");
        tx.execute("INSERT INTO events (data) VALUES ('b')", []).expect("insert");
        tx.rollback().expect("rollback");
        conn.execute("INSERT INTO other (id) VALUES (2)", []).expect("insert");
        assert!(!log.has_changed().expect("open"), "a rolled-back event raises nothing, later commits neither");

        conn.execute("INSERT INTO events (data) VALUES ('c')", []).expect("autocommit");
        assert!(log.has_changed().expect("open"), "a single-statement commit raises too");
    }

    #[test]
    fn a_held_commit_is_readable_at_once_and_announced_when_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let committed = Arc::new(Committed::default());
        let mut log = committed.log();
        let conn = open(dir.path(), &committed);
        let reader = Connection::open(dir.path().join("t.db")).expect("reader");

        let (inserted, held) = holding(|| conn.execute("INSERT INTO events (data) VALUES ('a')", []));
        inserted.expect("insert");
        let seen: i64 = reader.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).expect("count");
        assert_eq!(seen, 1, "readable before it is announced");
        assert!(!log.has_changed().expect("open"), "not announced while held");
        drop(held);
        assert!(log.has_changed().expect("open"), "announced once released");
        log.borrow_and_update();

        conn.execute("INSERT INTO events (data) VALUES ('b')", []).expect("insert");
        assert!(log.has_changed().expect("open"), "commits after the holding are announced at once");
    }

    #[test]
    fn the_log_still_checkpoints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let committed = Arc::new(Committed::default());
        let conn = open(dir.path(), &committed);
        let blob = "x".repeat(8000);
        for _ in 0..2000 {
            conn.execute("INSERT INTO events (data) VALUES (?1)", [&blob]).expect("insert");
        }
        let wal = std::fs::metadata(dir.path().join("t.db-wal")).expect("wal").len();
        let db = std::fs::metadata(dir.path().join("t.db")).expect("db").len();
        assert!(db > 8_000_000, "pages were checkpointed into the database file ({db} bytes)");
        assert!(wal < db, "the write-ahead log was reused rather than growing for ever ({wal} bytes)");
    }
}
