//! The `trigger_receipts` table of `agents.db`: which instance an inbound trigger's
//! delivery id started, so that a repeat gets the same one.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{cutoff, DbError};
use crate::domain::now;

/// How a GitHub delivery id is stored: apart from Standard Webhooks ids, and
/// never pruned (a GitHub signature has no timestamp, so its id is the only thing
/// that stops a captured delivery from being replayed).
#[must_use]
pub fn github_delivery(id: &str) -> String {
    format!("{GITHUB}{id}")
}

const GITHUB: &str = "github:";

/// Deletes receipts older than `max_age` (they are kept at least a day), except
/// GitHub's, which are kept for good.
///
/// # Errors
/// SQLite failures.
pub fn prune(conn: &Connection, max_age: Duration) -> Result<usize, DbError> {
    let age = max_age.max(Duration::from_secs(24 * 3600));
    Ok(conn.execute(
        "DELETE FROM trigger_receipts WHERE at < ?1 AND substr(delivery, 1, length(?2)) <> ?2",
        params![cutoff(age), GITHUB],
    )?)
}

/// The instance a trigger with this delivery id already started.
///
/// # Errors
/// SQLite failures or a corrupt row.
pub fn receipt(conn: &Connection, agent_id: Uuid, delivery: &str) -> Result<Option<Uuid>, DbError> {
    let id: Option<String> = conn
        .query_row(
            "SELECT instance_id FROM trigger_receipts WHERE agent_id = ?1 AND delivery = ?2",
            params![agent_id.to_string(), delivery],
            |r| r.get(0),
        )
        .optional()?;
    id.map(|i| Uuid::parse_str(&i).map_err(|_| DbError::Corrupt("trigger_receipts.instance_id".into()))).transpose()
}

/// Records that a trigger started `instance_id`; call it in the instance's
/// transaction. The receipts' primary key is what keeps two concurrent repeats of
/// one delivery from both starting an instance.
///
/// # Errors
/// SQLite failures; [`DbError::Conflict`] when the delivery has a receipt already.
pub fn insert_receipt(conn: &Connection, agent_id: Uuid, delivery: &str, instance_id: Uuid) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO trigger_receipts (agent_id, delivery, instance_id, at) VALUES (?1, ?2, ?3, ?4)",
        params![agent_id.to_string(), delivery, instance_id.to_string(), now()],
    )
    .map_err(|e| {
        if super::is_unique_violation(&e) {
            DbError::Conflict(format!("delivery {delivery:?} started an instance already"))
        } else {
            DbError::Sqlite(e)
        }
    })?;
    Ok(())
}
