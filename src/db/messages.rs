//! The `agent_messages` table of `agents.db`.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::events::{append, NewEvent};
use super::instances::uuid_column;
use super::{enum_column, DbError};
use crate::domain::event::Payload;
use crate::domain::message::{Message, Sender};

const COLUMNS: &str =
    "id, agent_instance_id, sender_type, content, requires_user_input, options, created_at, delivered_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let options: String = row.get(5)?;
    Ok(Message {
        id: uuid_column(row, 0)?,
        agent_instance_id: uuid_column(row, 1)?,
        sender_type: enum_column(row, 2, Sender::parse)?,
        content: row.get(3)?,
        requires_user_input: row.get(4)?,
        options: serde_json::from_str(&options).unwrap_or_default(),
        created_at: row.get(6)?,
        delivered_at: row.get(7)?,
    })
}

/// Stores a message and its `message.created` event; `agent_id` is the instance's agent.
///
/// # Errors
/// SQLite failures (a foreign key error if the instance is gone).
pub fn insert(conn: &Connection, m: &Message, agent_id: Uuid) -> Result<(), DbError> {
    let tx = conn.unchecked_transaction()?;
    insert_within(&tx, m, agent_id)?;
    tx.commit()?;
    Ok(())
}

/// [`insert`] inside the caller's transaction.
///
/// # Errors
/// SQLite failures.
pub fn insert_within(tx: &rusqlite::Transaction<'_>, m: &Message, agent_id: Uuid) -> Result<(), DbError> {
    store(tx, m)?;
    let event = NewEvent {
        payload: Payload::MessageCreated { message: m },
        agent_id: Some(agent_id),
        instance_id: Some(m.agent_instance_id),
        offset: None,
    };
    append(tx, &event)?;
    Ok(())
}

fn store(conn: &Connection, m: &Message) -> Result<(), DbError> {
    let options = serde_json::to_string(&m.options).unwrap_or_else(|_| "[]".to_owned());
    conn.execute(
        &format!("INSERT INTO agent_messages ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            m.id.to_string(),
            m.agent_instance_id.to_string(),
            m.sender_type.as_str(),
            m.content,
            m.requires_user_input,
            options,
            m.created_at,
            m.delivered_at
        ],
    )?;
    Ok(())
}

/// An instance's messages after `after` (all when `None`), oldest first.
/// `None` when `after` is not a message of this instance.
///
/// # Errors
/// SQLite failures.
pub fn after(
    conn: &Connection,
    instance: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Option<Vec<Message>>, DbError> {
    let instance = instance.to_string();
    let floor: i64 = match after {
        None => 0,
        Some(id) => {
            let found = conn
                .query_row(
                    "SELECT rowid FROM agent_messages WHERE id = ?1 AND agent_instance_id = ?2",
                    params![id.to_string(), instance],
                    |r| r.get(0),
                )
                .optional()?;
            match found {
                Some(rowid) => rowid,
                None => return Ok(None),
            }
        }
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agent_messages WHERE agent_instance_id = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![instance, floor, limit], from_row)?;
    Ok(Some(rows.collect::<Result<_, _>>()?))
}

/// User messages not yet typed, oldest first.
///
/// # Errors
/// SQLite failures.
pub fn held(conn: &Connection, instance: Uuid) -> Result<Vec<Message>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agent_messages
         WHERE agent_instance_id = ?1 AND delivered_at IS NULL AND sender_type = 'user' ORDER BY rowid"
    ))?;
    let rows = stmt.query_map([instance.to_string()], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records that a message was typed.
///
/// # Errors
/// SQLite failures.
pub fn mark_delivered(conn: &Connection, id: Uuid, at: &str) -> Result<(), DbError> {
    conn.execute("UPDATE agent_messages SET delivered_at = ?1 WHERE id = ?2", params![at, id.to_string()])?;
    Ok(())
}
