//! The `approvals` table of `agents.db`: permission requests agents made and what
//! became of them, each change stored with its event (`approval.requested`,
//! `approval.decided`). A request is decided once: the first decision wins.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::events::{append, NewEvent};
use super::instances::uuid_column;
use super::{enum_column, write_tx, DbError, Page};
use crate::domain::event::Payload;
use crate::domain::integration::{Approval, ApprovalStatus};
use crate::domain::now;

const COLUMNS: &str =
    "id, instance_id, agent_id, tool_name, tool_input, question, status, decided_by, message, created_at, decided_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Approval> {
    let input: String = row.get(4)?;
    Ok(Approval {
        id: uuid_column(row, 0)?,
        instance_id: uuid_column(row, 1)?,
        agent_id: uuid_column(row, 2)?,
        tool_name: row.get(3)?,
        tool_input: serde_json::from_str(&input).unwrap_or(serde_json::Value::Null),
        question: row.get(5)?,
        status: enum_column(row, 6, ApprovalStatus::parse)?,
        decided_by: row.get(7)?,
        message: row.get(8)?,
        created_at: row.get(9)?,
        decided_at: row.get(10)?,
    })
}

fn announce(conn: &Connection, approval: &Approval) -> Result<(), DbError> {
    let payload = if approval.status == ApprovalStatus::Pending {
        Payload::ApprovalRequested { approval }
    } else {
        Payload::ApprovalDecided { approval }
    };
    append(
        conn,
        &NewEvent { payload, agent_id: Some(approval.agent_id), instance_id: Some(approval.instance_id), offset: None },
    )?;
    Ok(())
}

/// Stores a new request (pending, or already decided by a rule) with its events.
///
/// # Errors
/// SQLite failures (an instance deleted meanwhile: a foreign key error).
pub fn insert(conn: &mut Connection, approval: &Approval) -> Result<(), DbError> {
    let tx = write_tx(conn)?;
    let pending = Approval {
        status: ApprovalStatus::Pending,
        decided_by: None,
        message: None,
        decided_at: None,
        ..approval.clone()
    };
    tx.execute(
        "INSERT INTO approvals (id, instance_id, agent_id, tool_name, tool_input, question, status,
             decided_by, message, created_at, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            approval.id.to_string(),
            approval.instance_id.to_string(),
            approval.agent_id.to_string(),
            approval.tool_name,
            approval.tool_input.to_string(),
            approval.question,
            approval.status.as_str(),
            approval.decided_by,
            approval.message,
            approval.created_at,
            approval.decided_at
        ],
    )?;
    announce(&tx, &pending)?;
    if approval.status != ApprovalStatus::Pending {
        announce(&tx, approval)?;
    }
    tx.commit()?;
    Ok(())
}

/// One request.
///
/// # Errors
/// SQLite failures.
pub fn get(conn: &Connection, id: Uuid) -> Result<Option<Approval>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1");
    Ok(conn.query_row(&sql, [id.to_string()], from_row).optional()?)
}

/// An instance's requests, newest first.
///
/// # Errors
/// SQLite failures.
pub fn of_instance(
    conn: &Connection,
    instance: Uuid,
    status: Option<ApprovalStatus>,
    page: Page,
) -> Result<Vec<Approval>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM approvals WHERE instance_id = ?1 AND (?2 IS NULL OR status = ?2)
         ORDER BY created_at DESC, rowid DESC LIMIT ?3 OFFSET ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![instance.to_string(), status.map(ApprovalStatus::as_str), page.limit, page.offset],
        from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Decides a pending request: `Ok(approval)` as decided, or `Err(current)` when it
/// was decided already (or is gone: `Ok(None)` of the outer result).
///
/// # Errors
/// SQLite failures.
pub fn decide(
    conn: &mut Connection,
    id: Uuid,
    status: ApprovalStatus,
    by: &str,
    message: Option<&str>,
) -> Result<Option<Result<Approval, Approval>>, DbError> {
    let tx = write_tx(conn)?;
    let Some(current) = get(&tx, id)? else { return Ok(None) };
    if current.status != ApprovalStatus::Pending {
        return Ok(Some(Err(current)));
    }
    let decided = Approval {
        status,
        decided_by: Some(by.to_owned()),
        message: message.map(str::to_owned),
        decided_at: Some(now()),
        ..current
    };
    tx.execute(
        "UPDATE approvals SET status = ?1, decided_by = ?2, message = ?3, decided_at = ?4 WHERE id = ?5",
        params![decided.status.as_str(), decided.decided_by, decided.message, decided.decided_at, id.to_string()],
    )?;
    announce(&tx, &decided)?;
    tx.commit()?;
    Ok(Some(Ok(decided)))
}

/// Closes every pending request of an instance (it moved on, or ended) as
/// `status`; returns them as closed.
///
/// # Errors
/// SQLite failures.
pub fn close_pending(
    conn: &mut Connection,
    instance: Uuid,
    status: ApprovalStatus,
    by: &str,
) -> Result<Vec<Approval>, DbError> {
    // Most instances never asked: no write transaction for them.
    let any: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM approvals WHERE instance_id = ?1 AND status = 'pending')",
        [instance.to_string()],
        |r| r.get(0),
    )?;
    if !any {
        return Ok(Vec::new());
    }
    let tx = write_tx(conn)?;
    let pending = {
        let sql = format!("SELECT {COLUMNS} FROM approvals WHERE instance_id = ?1 AND status = 'pending'");
        let mut stmt = tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([instance.to_string()], from_row)?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let at = now();
    let mut closed = Vec::with_capacity(pending.len());
    for approval in pending {
        let done = Approval { status, decided_by: Some(by.to_owned()), decided_at: Some(at.clone()), ..approval };
        tx.execute(
            "UPDATE approvals SET status = ?1, decided_by = ?2, decided_at = ?3 WHERE id = ?4",
            params![done.status.as_str(), done.decided_by, done.decided_at, done.id.to_string()],
        )?;
        announce(&tx, &done)?;
        closed.push(done);
    }
    tx.commit()?;
    Ok(closed)
}
