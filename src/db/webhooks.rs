//! The `webhooks` table of `agents.db`: outbound subscriptions. Their delivery
//! queue and attempt log are in [`super::deliveries`].

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{events, write_tx, DbError, Page};
use crate::domain::now;
use crate::domain::webhook::{Format, Webhook, WebhookChange, WebhookRecord};

const COLUMNS: &str = "w.id, w.url, w.events, w.agent_id, w.active, w.format, w.description, w.disabled_reason,
    w.created_at, w.updated_at,
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending')";

pub(super) fn corrupt(what: &str) -> DbError {
    DbError::Corrupt(format!("webhooks.{what}"))
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Webhook, DbError>> {
    let id: String = row.get(0)?;
    let events: String = row.get(2)?;
    let agent_id: Option<String> = row.get(3)?;
    let format: String = row.get(5)?;
    let pending: i64 = row.get(10)?;
    Ok((|| {
        Ok(Webhook {
            id: Uuid::parse_str(&id).map_err(|_| corrupt("id"))?,
            url: row.get(1)?,
            events: serde_json::from_str(&events).map_err(|_| corrupt("events"))?,
            agent_id: agent_id.map(|a| Uuid::parse_str(&a)).transpose().map_err(|_| corrupt("agent_id"))?,
            active: row.get(4)?,
            format: Format::parse(&format).map_err(|_| corrupt("format"))?,
            description: row.get(6)?,
            disabled_reason: row.get(7)?,
            pending_deliveries: u64::try_from(pending).unwrap_or(0),
            created_at: row.get(8)?,
            updated_at: row.get(9)?,
            secret: None,
        })
    })())
}

/// One subscription (without its secret).
///
/// # Errors
/// SQLite failures or a corrupt row.
pub fn get(conn: &Connection, id: Uuid) -> Result<Option<Webhook>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks w WHERE w.id = ?1");
    conn.query_row(&sql, [id.to_string()], from_row).optional()?.transpose()
}

/// Subscriptions, newest first.
///
/// # Errors
/// SQLite failures or a corrupt row.
pub fn list(conn: &Connection, page: Page) -> Result<Vec<Webhook>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks w ORDER BY w.rowid DESC LIMIT ?1 OFFSET ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![page.limit, page.offset], from_row)?;
    rows.map(|r| r?).collect()
}

/// Stores a subscription; it receives events committed from now on. The answer
/// carries the secret (the only time it is shown).
///
/// # Errors
/// SQLite failures.
pub fn insert(conn: &mut Connection, record: &WebhookRecord) -> Result<Webhook, DbError> {
    let tx = write_tx(conn)?;
    let id = Uuid::new_v4();
    let at = now();
    let (_, head) = events::bounds(&tx)?;
    tx.execute(
        "INSERT INTO webhooks (id, url, events, agent_id, secret, active, format, description, after_seq, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![
            id.to_string(),
            record.url,
            serde_json::to_string(&record.events).map_err(|_| corrupt("events"))?,
            record.agent_id.map(|a| a.to_string()),
            record.secret,
            record.active,
            record.format.as_str(),
            record.description,
            head,
            at
        ],
    )?;
    let mut webhook = get(&tx, id)?.ok_or_else(|| corrupt("id"))?;
    tx.commit()?;
    webhook.secret = Some(record.secret.clone());
    Ok(webhook)
}

/// Applies a change; `None` when there is no such subscription. A new secret is in
/// the answer; turning the subscription on clears `disabled_reason`.
///
/// # Errors
/// SQLite failures.
pub fn update(conn: &mut Connection, id: Uuid, change: WebhookChange) -> Result<Option<Webhook>, DbError> {
    let tx = write_tx(conn)?;
    if get(&tx, id)?.is_none() {
        return Ok(None);
    }
    let key = id.to_string();
    let set = |column: &str, value: &dyn rusqlite::ToSql| -> Result<(), DbError> {
        tx.execute(&format!("UPDATE webhooks SET {column} = ?1 WHERE id = ?2"), params![value, key])?;
        Ok(())
    };
    if let Some(url) = &change.url {
        set("url", url)?;
    }
    if let Some(events) = &change.events {
        set("events", &serde_json::to_string(events).map_err(|_| corrupt("events"))?)?;
    }
    if let Some(agent_id) = change.agent_id {
        set("agent_id", &agent_id.map(|a| a.to_string()))?;
    }
    if let Some(secret) = &change.secret {
        set("secret", secret)?;
    }
    if let Some(active) = change.active {
        set("active", &active)?;
        if active {
            set("disabled_reason", &rusqlite::types::Null)?;
        }
    }
    if let Some(format) = change.format {
        set("format", &format.as_str())?;
    }
    if let Some(description) = &change.description {
        set("description", description)?;
    }
    set("updated_at", &now())?;
    let mut webhook = get(&tx, id)?.ok_or_else(|| corrupt("id"))?;
    tx.commit()?;
    webhook.secret = change.secret;
    Ok(Some(webhook))
}

/// Deletes a subscription with its queue and log; `false` when there is none.
///
/// # Errors
/// SQLite failures.
pub fn delete(conn: &Connection, id: Uuid) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM webhooks WHERE id = ?1", [id.to_string()])? > 0)
}
