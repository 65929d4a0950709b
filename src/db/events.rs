//! The `events` log of `agents.db` and the task `outbox` of `tasks.db`.
//!
//! Every change appends its event in the transaction that makes the change, so an
//! event exists if and only if its change was committed. Task changes live in the
//! other file, whose transactions cannot span both: they write an outbox row in
//! their own transaction, and [`relay_tasks`] moves outbox rows into the log —
//! exactly once, thanks to the unique `source` column — before deleting them.

use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use uuid::Uuid;

use super::{cutoff, DbError};
use crate::domain::event::Payload;
use crate::domain::now;

/// An event to append.
#[derive(Debug)]
pub struct NewEvent<'a> {
    /// What happened; its kind follows from it.
    pub payload: Payload<'a>,
    pub agent_id: Option<Uuid>,
    pub instance_id: Option<Uuid>,
    /// For instance events: the transcript length when it happened.
    pub offset: Option<u64>,
}

/// Appends an event; call it inside the transaction of the change it reports.
///
/// # Errors
/// SQLite failures.
pub fn append(conn: &Connection, event: &NewEvent<'_>) -> Result<i64, DbError> {
    let data = event.payload.to_json().map_err(|e| DbError::Corrupt(format!("event payload: {e}")))?;
    conn.execute(
        "INSERT INTO events (type, agent_id, instance_id, data, at, offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            event.payload.kind().as_str(),
            event.agent_id.map(|a| a.to_string()),
            event.instance_id.map(|i| i.to_string()),
            data,
            now(),
            event.offset.and_then(|o| i64::try_from(o).ok())
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Queues a task event in `tasks.db`; call it inside the task change's transaction.
///
/// # Errors
/// SQLite failures.
pub fn append_task(conn: &Connection, payload: &Payload<'_>) -> Result<(), DbError> {
    let data = payload.to_json().map_err(|e| DbError::Corrupt(format!("event payload: {e}")))?;
    conn.execute(
        "INSERT INTO outbox (type, data, at) VALUES (?1, ?2, ?3)",
        params![payload.kind().as_str(), data, now()],
    )?;
    Ok(())
}

/// Moves queued task events into the log, oldest first; returns how many moved.
///
/// # Errors
/// SQLite failures (what was not moved stays queued for the next relay).
pub fn relay_tasks(tasks: &Connection, agents: &Connection) -> Result<usize, DbError> {
    let pending: Vec<(i64, String, String, String)> = {
        let mut stmt = tasks.prepare_cached("SELECT id, type, data, at FROM outbox ORDER BY id LIMIT 1000")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    if pending.is_empty() {
        return Ok(0);
    }
    // The caller may hold this connection by reference (it is the one it stored its
    // own change with), so the transaction is begun on a shared borrow.
    let tx = rusqlite::Transaction::new_unchecked(agents, rusqlite::TransactionBehavior::Immediate)?;
    for (id, kind, data, at) in &pending {
        tx.execute(
            "INSERT OR IGNORE INTO events (type, data, at, source) VALUES (?1, ?2, ?3, ?4)",
            params![kind, data, at, format!("tasks:{id}")],
        )?;
    }
    tx.commit()?;
    let last = pending.last().map_or(0, |p| p.0);
    tasks.execute("DELETE FROM outbox WHERE id <= ?1", [last])?;
    Ok(pending.len())
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    pub kind: String,
    pub agent_id: Option<String>,
    pub instance_id: Option<String>,
    /// The payload, one line of JSON.
    pub data: String,
    /// When it happened (RFC 3339).
    pub at: String,
    pub offset: Option<u64>,
}

const COLUMNS: &str = "seq, type, agent_id, instance_id, data, at, offset";

fn event_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: r.get(0)?,
        kind: r.get(1)?,
        agent_id: r.get(2)?,
        instance_id: r.get(3)?,
        data: r.get(4)?,
        at: r.get(5)?,
        offset: r.get::<_, Option<i64>>(6)?.and_then(|o| u64::try_from(o).ok()),
    })
}

/// The event numbered `seq`, if the log still holds it.
///
/// # Errors
/// SQLite failures.
pub fn one(conn: &Connection, seq: i64) -> Result<Option<Event>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE seq = ?1");
    Ok(conn.query_row(&sql, [seq], event_of).optional()?)
}

/// Which events a subscriber wants.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub agent_id: Option<Uuid>,
    pub instance_id: Option<Uuid>,
    pub types: Option<Vec<String>>,
}

/// Events after `seq` matching `filter`, oldest first, at most `limit`.
///
/// # Errors
/// SQLite failures.
pub fn after(conn: &Connection, seq: i64, filter: &Filter, limit: u32) -> Result<Vec<Event>, DbError> {
    let mut sql = format!("SELECT {COLUMNS} FROM events WHERE seq > ?1");
    let mut values: Vec<SqlValue> = vec![SqlValue::Integer(seq)];
    if let Some(agent) = filter.agent_id {
        values.push(SqlValue::Text(agent.to_string()));
        sql.push_str(&format!(" AND agent_id = ?{}", values.len()));
    }
    if let Some(instance) = filter.instance_id {
        values.push(SqlValue::Text(instance.to_string()));
        sql.push_str(&format!(" AND instance_id = ?{}", values.len()));
    }
    if let Some(types) = &filter.types {
        let mut marks = Vec::new();
        for kind in types {
            values.push(SqlValue::Text(kind.clone()));
            marks.push(format!("?{}", values.len()));
        }
        sql.push_str(&format!(" AND type IN ({})", marks.join(", ")));
    }
    values.push(SqlValue::Integer(i64::from(limit)));
    sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", values.len()));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), event_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The oldest kept and the newest sequence numbers (0 when the log is empty).
///
/// # Errors
/// SQLite failures.
pub fn bounds(conn: &Connection) -> Result<(i64, i64), DbError> {
    let newest: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let oldest: i64 = conn.query_row("SELECT COALESCE(MIN(seq), 0) FROM events", [], |r| r.get(0))?;
    // AUTOINCREMENT never reuses numbers, so the head survives a pruned-empty log.
    // No row yet (nothing was ever logged) means the newest; any other failure (a
    // busy database) is an error, never a guess.
    let head: i64 = conn
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'events'", [], |r| r.get(0))
        .optional()?
        .unwrap_or(newest);
    Ok((if oldest == 0 { head + 1 } else { oldest }, head.max(newest)))
}

/// Deletes events that are both older than `max_age` and not among the newest `keep`
/// (never one the webhook dispatcher has not read yet).
///
/// # Errors
/// SQLite failures.
pub fn prune(conn: &Connection, keep: u64, max_age: Duration) -> Result<usize, DbError> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    Ok(conn.execute(
        "DELETE FROM events WHERE at < ?1 AND seq <= (SELECT COALESCE(MAX(seq), 0) FROM events) - ?2
           AND seq <= (SELECT seq FROM webhook_cursor WHERE id = 1)",
        params![cutoff(max_age), keep],
    )?)
}
