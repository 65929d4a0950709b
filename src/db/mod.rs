//! Storage: two SQLite files, each behind its own r2d2 pool.
//!
//! `tasks.db` holds only tasks; `agents.db` holds the agent domain. Every
//! connection runs in WAL mode with `foreign_keys=ON` (cascades depend on it), a
//! busy timeout and `synchronous=FULL`, so a 2xx answer means the write is on disk
//! even if the machine loses power. The one exception, [`Unsynced`], syncs the
//! write-ahead log itself before its writer answers. Schema files live in `sql/`
//! and are applied as numbered migrations tracked by `PRAGMA user_version`. Functions here are
//! blocking: from async code, reach them through [`run`], never on an async worker.

pub mod agents;
pub mod approvals;
pub mod deliveries;
pub mod events;
pub mod idempotency;
pub mod instances;
pub mod messages;
pub mod sessions;
pub mod signal;
pub mod tasks;
pub mod triggers;
mod unsynced;
pub mod webhooks;

pub use unsynced::{run_unsynced, Unsynced};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

/// A pool of connections to one database file.
pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// Schema of `agents.db`, in order; index + 1 is the schema version.
pub const AGENTS_MIGRATIONS: &[&str] = &[
    include_str!("../../sql/agents/001_agents.sql"),
    include_str!("../../sql/agents/002_api_v1_fields.sql"),
    include_str!("../../sql/agents/003_instance_env.sql"),
    include_str!("../../sql/agents/004_events.sql"),
    include_str!("../../sql/agents/005_idempotency.sql"),
    include_str!("../../sql/agents/006_webhooks.sql"),
    include_str!("../../sql/agents/007_instance_prompt.sql"),
    include_str!("../../sql/agents/008_security.sql"),
    include_str!("../../sql/agents/009_workspaces.sql"),
    include_str!("../../sql/agents/010_isolation.sql"),
    include_str!("../../sql/agents/011_wait_id.sql"),
    include_str!("../../sql/agents/012_integrations.sql"),
    include_str!("../../sql/agents/013_wait_options.sql"),
    include_str!("../../sql/agents/014_runners.sql"),
];
/// Schema of `tasks.db`, in order; index + 1 is the schema version.
pub const TASKS_MIGRATIONS: &[&str] =
    &[include_str!("../../sql/tasks/001_tasks.sql"), include_str!("../../sql/tasks/002_outbox.sql")];

const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA foreign_keys = ON;
     PRAGMA busy_timeout = 10000;
     PRAGMA synchronous = FULL;";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite refused or failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No connection could be had.
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A uniqueness rule was broken (e.g. a duplicate agent name).
    #[error("{0}")]
    Conflict(String),
    /// The file was written by a newer Switchboard.
    #[error("{file} has schema version {found}, newer than this build knows ({known}); upgrade switchboard")]
    TooNew { file: String, found: u32, known: u32 },
    /// A stored value could not be decoded.
    #[error("corrupt stored value in {0}")]
    Corrupt(String),
    /// The write-ahead log could not be synced after a commit.
    #[error("cannot sync the write-ahead log {0}")]
    Sync(String),
    /// The thread the work ran on failed (it panicked or the runtime stops).
    #[error("the storage thread failed: {0}")]
    Thread(String),
}

/// Runs blocking storage work with a connection of `pool` on the blocking thread
/// pool, from async code: the one way async code reaches the databases.
///
/// # Errors
/// No connection could be had, the work's own error, or a failed thread.
pub fn run<T, E, F>(pool: &Pool, work: F) -> impl std::future::Future<Output = Result<T, E>> + 'static
where
    F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    on_blocking_pool(move || {
        let mut conn = pool.get().map_err(DbError::from)?;
        work(&mut conn)
    })
}

/// Runs `work` on the blocking thread pool; a thread that failed is a [`DbError::Thread`].
fn on_blocking_pool<T, E, F>(work: F) -> impl std::future::Future<Output = Result<T, E>> + 'static
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let job = tokio::task::spawn_blocking(work);
    async move { job.await.unwrap_or_else(|e| Err(E::from(DbError::Thread(e.to_string())))) }
}

/// The two databases.
#[derive(Clone)]
pub struct Databases {
    /// `agents.db`: agents, settings, instances, messages.
    pub agents: Pool,
    /// `agents.db` again, for the writes that must be readable before they are
    /// durable (an instance's row with its start).
    pub unsynced: Arc<Unsynced>,
    /// Agents as last read (forgotten when they change).
    pub known_agents: Arc<agents::Known>,
    /// `tasks.db`: tasks.
    pub tasks: Pool,
    /// Raised after `agents.db` commits that appended events or queued deliveries.
    pub committed: Arc<signal::Committed>,
}

impl Databases {
    /// Opens (creating if needed) and migrates both databases in `data_dir`.
    ///
    /// # Errors
    /// A file that cannot be opened or migrated, or one from a newer version.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        let committed = Arc::new(signal::Committed::default());
        let agents = data_dir.join("agents.db");
        Ok(Databases {
            agents: open_pool(&agents, AGENTS_MIGRATIONS, Some(committed.clone()))?,
            unsynced: Arc::new(Unsynced::open(&agents, &committed)?),
            known_agents: Arc::default(),
            tasks: open_pool(&data_dir.join("tasks.db"), TASKS_MIGRATIONS, None)?,
            committed,
        })
    }

    /// Folds the write-ahead logs back into the database files (used at shutdown).
    pub fn checkpoint(&self) {
        for (name, pool) in [("agents.db", &self.agents), ("tasks.db", &self.tasks)] {
            let result = pool
                .get()
                .map_err(DbError::from)
                .and_then(|conn| conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(DbError::from));
            if let Err(e) = result {
                tracing::warn!(database = name, error = %e, "checkpoint failed");
            }
        }
    }
}

fn open_pool(path: &Path, migrations: &[&str], committed: Option<Arc<signal::Committed>>) -> Result<Pool, DbError> {
    let mut conn = Connection::open(path)?;
    conn.execute_batch(CONNECTION_PRAGMAS)?;
    migrate(&mut conn, migrations, &path.display().to_string())?;
    drop(conn);
    let manager = SqliteConnectionManager::file(path).with_init(move |c| {
        c.execute_batch(CONNECTION_PRAGMAS)?;
        match &committed {
            Some(committed) => signal::install(c, committed),
            None => Ok(()),
        }
    });
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(30))
        .build(manager)?;
    Ok(pool)
}

/// Applies every migration newer than the file's `user_version`, each in its own transaction.
///
/// # Errors
/// A failing statement (the file is left at the last good version), or a file
/// whose version is newer than `migrations` knows.
pub fn migrate(conn: &mut Connection, migrations: &[&str], file: &str) -> Result<(), DbError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let known = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    if found > known {
        return Err(DbError::TooNew { file: file.to_owned(), found, known });
    }
    for (version, sql) in (1..).zip(migrations.iter()).skip(found as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(file, version, "schema migrated");
    }
    Ok(())
}

/// Whether an error is a broken UNIQUE constraint.
#[must_use]
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg)) if f.code == ErrorCode::ConstraintViolation && msg.contains("UNIQUE"))
}

/// Begins a transaction that takes the write lock at once (for read-then-write).
///
/// # Errors
/// The lock could not be had within the busy timeout.
pub fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, DbError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// The stored form (RFC 3339, milliseconds) of the moment `age` ago.
#[must_use]
pub fn cutoff(age: Duration) -> String {
    let at = chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A page of a list: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

/// Reads a text column holding one of an enum's values.
///
/// # Errors
/// A value the enum does not know (a corrupt row).
pub fn enum_column<T>(
    row: &rusqlite::Row<'_>,
    index: usize,
    parse: fn(&str) -> Result<T, crate::domain::Invalid>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.message.into()))
}
