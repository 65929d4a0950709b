//! The `agent_instances` table of `agents.db`.

use rusqlite::{params, Connection, Row};
use uuid::Uuid;

use super::{enum_column, DbError, Page};
use crate::domain::instance::{Instance, InstanceStatus};

const COLUMNS: &str =
    "id, agent_id, status, started_at, completed_at, pty_session_id, project_path,
     last_activity_at, exit_code, exit_signal, status_reason, task_id, pid, cols, rows";

fn uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(index)?;
    Uuid::parse_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Instance> {
    Ok(Instance {
        id: uuid_column(row, 0)?,
        agent_id: uuid_column(row, 1)?,
        status: enum_column(row, 2, InstanceStatus::parse)?,
        started_at: row.get(3)?,
        completed_at: row.get(4)?,
        pty_session_id: row.get(5)?,
        project_path: row.get(6)?,
        last_activity_at: row.get(7)?,
        exit_code: row.get(8)?,
        exit_signal: row.get(9)?,
        status_reason: row.get(10)?,
        task_id: row.get(11)?,
        pid: row.get(12)?,
        queue_position: None,
        cols: row.get(13)?,
        rows: row.get(14)?,
    })
}

/// An agent's instances, newest first.
///
/// # Errors
/// SQLite failures.
pub fn list_by_agent(
    conn: &Connection,
    agent_id: Uuid,
    page: Page,
) -> Result<Vec<Instance>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agent_instances WHERE agent_id = ?1
         ORDER BY created_at DESC, rowid DESC LIMIT ?2 OFFSET ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![agent_id.to_string(), page.limit, page.offset],
        from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
