//! The `sessions` table of `agents.db`: browser sessions by the hash of their id,
//! with the token they were made with and their expiry.

use rusqlite::{params, Connection};

use super::DbError;
use crate::domain::now;

/// A stored session: the hash of its id (hex) and when it expires (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub expires_at: String,
}

/// Deletes expired sessions and those made with another token, then lists the rest.
///
/// # Errors
/// SQLite failures.
pub fn load(conn: &Connection, token_tag: &str) -> Result<Vec<SessionRow>, DbError> {
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1 OR token_tag <> ?2", params![now(), token_tag])?;
    let mut stmt = conn.prepare("SELECT id_hash, expires_at FROM sessions")?;
    let rows = stmt.query_map([], |r| Ok(SessionRow { id_hash: r.get(0)?, expires_at: r.get(1)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Stores a new session (and forgets expired ones).
///
/// # Errors
/// SQLite failures.
pub fn insert(conn: &Connection, row: &SessionRow, token_tag: &str) -> Result<(), DbError> {
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now()])?;
    conn.execute(
        "INSERT INTO sessions (id_hash, token_tag, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![row.id_hash, token_tag, now(), row.expires_at],
    )?;
    Ok(())
}

/// Ends one session; whether it existed.
///
/// # Errors
/// SQLite failures.
pub fn delete(conn: &Connection, id_hash: &str) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])? == 1)
}

/// Ends every session; how many there were.
///
/// # Errors
/// SQLite failures.
pub fn delete_all(conn: &Connection) -> Result<usize, DbError> {
    Ok(conn.execute("DELETE FROM sessions", [])?)
}
