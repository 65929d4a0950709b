//! A connection to `agents.db` whose commits are readable before they are durable.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use super::{signal, DbError, CONNECTION_PRAGMAS};

/// Runs blocking storage work on the connection of `unsynced`, on the blocking
/// thread pool (see [`Unsynced::commit`]).
///
/// # Errors
/// The work's own error, or a failed thread.
pub fn run_unsynced<T, F>(unsynced: &Arc<Unsynced>, work: F) -> impl std::future::Future<Output = Result<T, DbError>>
where
    F: FnOnce(&Unsynced) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    let unsynced = unsynced.clone();
    super::on_blocking_pool(move || work(&unsynced))
}

/// A connection to `agents.db` whose commits are readable before they are
/// durable: for a write that something must be able to read before its writer
/// answers (an instance's row, which its program may ask for at once), so that the
/// sync overlaps that work instead of preceding it.
///
/// Its commits skip their own sync (`synchronous = NORMAL`); [`Unsynced::commit`]
/// then syncs the write-ahead log itself before it returns, so what it returns
/// is on disk as with every other connection. Followers of the event log are
/// woken only after that sync.
pub struct Unsynced {
    conn: std::sync::Mutex<Connection>,
    log: std::path::PathBuf,
}

impl Unsynced {
    pub(super) fn open(path: &Path, committed: &Arc<signal::Committed>) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(CONNECTION_PRAGMAS)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
        signal::install(&conn, committed)?;
        let mut log = path.as_os_str().to_owned();
        log.push("-wal");
        Ok(Unsynced { conn: std::sync::Mutex::new(conn), log: log.into() })
    }

    /// Runs `write`, which commits; tells `visible` whether it did, right after the
    /// commit (what it wrote is readable then); and returns once that is durable.
    ///
    /// # Errors
    /// The write's own error, or a failed sync of the write-ahead log (what was
    /// committed may then be lost with the machine's power).
    pub fn commit<T>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, DbError>,
        visible: impl FnOnce(bool),
    ) -> Result<T, DbError> {
        let (written, held) = {
            // A write that panicked left no transaction open (it rolls back as it unwinds).
            let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            signal::holding(|| write(&mut conn))
        };
        visible(written.is_ok());
        let value = written?;
        let synced = std::fs::File::open(&self.log).and_then(|log| log.sync_data());
        synced.map_err(|e| DbError::Sync(format!("{}: {e}", self.log.display())))?;
        drop(held);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_is_readable_before_it_returns_and_announced_after_its_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let other = Connection::open(&path).expect("open");
        other
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE events (seq INTEGER PRIMARY KEY, data TEXT);")
            .expect("schema");
        let committed = Arc::new(signal::Committed::default());
        let log = committed.log();
        let unsynced = Unsynced::open(&path, &committed).expect("open");
        let mut seen = None;
        let written = unsynced.commit(
            |conn| Ok(conn.execute("INSERT INTO events (data) VALUES ('a')", [])?),
            |ok| {
                let count: i64 = other.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).expect("count");
                seen = Some((ok, count, log.has_changed().expect("open")));
            },
        );
        assert_eq!(written.expect("commit"), 1);
        assert_eq!(seen, Some((true, 1, false)), "readable from another connection, not yet announced");
        assert!(log.has_changed().expect("open"), "announced once synced");

        let failed = unsynced
            .commit(|conn| Ok(conn.execute("INSERT INTO nowhere VALUES (1)", [])?), |ok| seen = Some((ok, 0, false)));
        assert!(failed.is_err());
        assert_eq!(seen, Some((false, 0, false)), "a failed write is told as such");
    }
}
