//! The `idempotency_keys` table of `agents.db`: answers to POSTs sent with an
//! `Idempotency-Key`, so that automation can retry safely.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{cutoff, DbError};
use crate::domain::now;

/// How long a key is remembered.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);

/// What a key holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// New: this request answers it.
    Claimed,
    /// A first request with this key is still being answered.
    InProgress,
    /// Already answered: replay this.
    Answered { status: u16, body: Vec<u8> },
}

/// Claims `key` in `scope`, or reports what it already holds.
///
/// # Errors
/// SQLite failures.
pub fn claim(conn: &Connection, scope: &str, key: &str) -> Result<Claim, DbError> {
    conn.execute(
        "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND created_at < ?3",
        params![scope, key, cutoff(KEEP)],
    )?;
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO idempotency_keys (scope, key, created_at) VALUES (?1, ?2, ?3)",
        params![scope, key, now()],
    )?;
    if inserted == 1 {
        return Ok(Claim::Claimed);
    }
    let held: Option<(Option<u16>, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT status, body FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
            params![scope, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match held {
        Some((Some(status), body)) => Claim::Answered { status, body: body.unwrap_or_default() },
        _ => Claim::InProgress,
    })
}

/// Stores the answer of a claimed key.
///
/// # Errors
/// SQLite failures.
pub fn answer(conn: &Connection, scope: &str, key: &str, status: u16, body: &[u8]) -> Result<(), DbError> {
    conn.execute(
        "UPDATE idempotency_keys SET status = ?3, body = ?4 WHERE scope = ?1 AND key = ?2",
        params![scope, key, status, body],
    )?;
    Ok(())
}

/// Frees a claimed key whose request failed, so that a retry runs again.
///
/// # Errors
/// SQLite failures.
pub fn release(conn: &Connection, scope: &str, key: &str) -> Result<(), DbError> {
    conn.execute("DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND status IS NULL", params![scope, key])?;
    Ok(())
}

/// Forgets keys older than [`KEEP`].
///
/// # Errors
/// SQLite failures.
pub fn prune(conn: &Connection) -> Result<usize, DbError> {
    Ok(conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?1", [cutoff(KEEP)])?)
}
