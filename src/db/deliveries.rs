//! The durable delivery queue of `agents.db` (one row per subscription and event),
//! its attempt log, and the dispatch cursor over the event log.
//!
//! The dispatcher (`webhooks::queue`) queues a delivery for every subscription
//! that wants an event and moves the cursor in one transaction: after a crash
//! either both happened or neither did, so no event is skipped and none is queued
//! twice. Bodies are rendered by the dispatcher; this module stores them.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::events::Event;
use super::webhooks::corrupt;
use super::{cutoff, write_tx, DbError, Page};
use crate::domain::now;
use crate::domain::webhook::{wants, Format};

/// An active subscription, as the dispatcher matches events against it.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub id: String,
    events: Vec<String>,
    agent_id: Option<String>,
    pub format: Format,
    /// Events up to this one predate the subscription.
    after_seq: i64,
}

impl Subscriber {
    /// Whether this subscription is sent `event`.
    #[must_use]
    pub fn wants(&self, event: &Event) -> bool {
        let agent_ok = self.agent_id.as_ref().is_none_or(|a| event.agent_id.as_ref() == Some(a));
        event.seq > self.after_seq && agent_ok && wants(&self.events, &event.kind)
    }
}

/// The active subscriptions.
///
/// # Errors
/// SQLite failures, or a corrupt stored subscription.
pub fn subscribers(conn: &Connection) -> Result<Vec<Subscriber>, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, events, agent_id, format, after_seq FROM webhooks WHERE active = 1")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get(4)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, events, agent_id, format, after_seq) = row?;
        out.push(Subscriber {
            id,
            events: serde_json::from_str(&events).map_err(|_| corrupt("events"))?,
            agent_id,
            format: Format::parse(&format).map_err(|_| corrupt("format"))?,
            after_seq,
        });
    }
    Ok(out)
}

/// Whether the subscription is active, and its format (`None`: no such subscription).
///
/// # Errors
/// SQLite failures, or a corrupt stored format.
pub fn subscription(conn: &Connection, webhook_id: Uuid) -> Result<Option<(bool, Format)>, DbError> {
    let hook: Option<(bool, String)> = conn
        .query_row("SELECT active, format FROM webhooks WHERE id = ?1", [webhook_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    hook.map(|(active, format)| Ok((active, Format::parse(&format).map_err(|_| corrupt("format"))?))).transpose()
}

/// The last event the dispatcher has queued deliveries for.
///
/// # Errors
/// SQLite failures.
pub fn cursor(conn: &Connection) -> Result<i64, DbError> {
    Ok(conn.query_row("SELECT seq FROM webhook_cursor WHERE id = 1", [], |r| r.get(0))?)
}

/// Moves the dispatch cursor from `from` to `to`; call it in the transaction that
/// queued the deliveries of the events between.
///
/// # Errors
/// SQLite failures, or a cursor that is no longer at `from` (`Conflict`).
pub fn advance(conn: &Connection, from: i64, to: i64) -> Result<(), DbError> {
    let moved = conn.execute("UPDATE webhook_cursor SET seq = ?2 WHERE id = 1 AND seq = ?1", params![from, to])?;
    if moved == 0 {
        return Err(DbError::Conflict(format!("the webhook cursor moved away from {from}")));
    }
    Ok(())
}

/// Queues `body` as the delivery of `event` to a subscription, due now; returns its
/// id (a delivery that exists already is kept as it is).
///
/// # Errors
/// SQLite failures.
pub fn queue(conn: &Connection, webhook_id: &str, event: &Event, body: &str) -> Result<String, DbError> {
    let id = Uuid::new_v4().to_string();
    let at = now();
    conn.execute(
        "INSERT OR IGNORE INTO webhook_deliveries
            (id, webhook_id, event_id, event_type, body, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![id, webhook_id, event.seq, event.kind, body, now_ms(), at],
    )?;
    Ok(id)
}

/// Makes the subscription's delivery of `event_id`, if it has one, pending and due
/// now with the same id and a fresh retry schedule; returns its id. An attempt in
/// flight meanwhile sees that its delivery was requeued (its due time changed) and
/// leaves it pending: see [`record`].
///
/// # Errors
/// SQLite failures.
pub fn requeue(conn: &Connection, webhook_id: Uuid, event_id: i64) -> Result<Option<String>, DbError> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT id FROM webhook_deliveries WHERE webhook_id = ?1 AND event_id = ?2",
            params![webhook_id.to_string(), event_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = &existing {
        // Never the due time it had: that is how an attempt in flight tells.
        conn.execute(
            "UPDATE webhook_deliveries SET state = 'pending', updated_at = ?2,
                 next_attempt_at = CASE WHEN next_attempt_at = ?1 THEN ?1 + 1 ELSE ?1 END,
                 scheduled_from = CASE WHEN state = 'pending' THEN scheduled_from ELSE attempts END
             WHERE id = ?3",
            params![now_ms(), now(), id],
        )?;
    }
    Ok(existing)
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// For each active subscription with queued deliveries: when its earliest is due (Unix ms).
///
/// # Errors
/// SQLite failures.
pub fn heads(conn: &Connection) -> Result<Vec<(String, i64)>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.webhook_id, MIN(d.next_attempt_at) FROM webhook_deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.state = 'pending' AND w.active = 1 GROUP BY d.webhook_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A delivery whose next attempt is due.
#[derive(Debug, Clone)]
pub struct Due {
    /// Also the `webhook-id` header.
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: i64,
    /// When it was due (Unix ms), as read; a requeue meanwhile changes it.
    pub due_at: i64,
    pub body: String,
    /// 1-based number of the attempt about to be made.
    pub attempt: u32,
    /// Index into the retry schedule should this attempt fail.
    pub retry_index: usize,
    pub url: String,
    pub secret: String,
}

/// The subscription's earliest queued delivery.
///
/// # Errors
/// SQLite failures.
pub fn head(conn: &Connection, webhook_id: &str) -> Result<Option<Due>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.event_id, d.body, d.attempts, d.scheduled_from, w.url, w.secret, d.next_attempt_at
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.webhook_id = ?1 AND d.state = 'pending' AND w.active = 1
         ORDER BY d.next_attempt_at, d.event_id LIMIT 1",
    )?;
    Ok(stmt
        .query_row([webhook_id], |r| {
            let attempts: i64 = r.get(3)?;
            let from: i64 = r.get(4)?;
            Ok(Due {
                delivery_id: r.get(0)?,
                webhook_id: webhook_id.to_owned(),
                event_id: r.get(1)?,
                due_at: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                body: r.get(2)?,
                attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                retry_index: usize::try_from(attempts - from).unwrap_or(0),
                url: r.get(5)?,
                secret: r.get(6)?,
            })
        })
        .optional()?)
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The receiver's status code, when it answered.
    pub status: Option<u16>,
    /// What went wrong: a connection error or timeout, or the start of a non-2xx answer.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Delivered,
    /// Another attempt at this Unix-ms time.
    Retry(i64),
    /// No attempts left.
    Failed,
    /// `410 Gone`: the subscription was turned off.
    Disabled,
    /// The subscription or delivery was deleted meanwhile.
    Vanished,
    /// A redelivery was asked for while the attempt was in flight: it stays due.
    Requeued,
}

/// Logs an attempt and moves its delivery on: delivered, retried after the next
/// step of `schedule`, failed when the schedule is spent, or (410) the subscription off.
/// A delivery requeued while the attempt was in flight stays pending and due, with a
/// fresh schedule after this attempt.
///
/// # Errors
/// SQLite failures (the delivery stays due and is attempted again).
pub fn record(conn: &mut Connection, due: &Due, outcome: &Outcome, schedule: &[Duration]) -> Result<Recorded, DbError> {
    let tx = write_tx(conn)?;
    let row: Option<(String, Option<i64>)> = tx
        .query_row("SELECT state, next_attempt_at FROM webhook_deliveries WHERE id = ?1", [&due.delivery_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((state, due_at)) = row else {
        return Ok(Recorded::Vanished);
    };
    let requeued = state == "pending" && due_at != Some(due.due_at);
    let at = now();
    tx.execute(
        "INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt, status_code, error, duration_ms, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            due.delivery_id,
            due.webhook_id,
            due.attempt,
            outcome.status,
            outcome.error,
            i64::try_from(outcome.duration_ms).unwrap_or(i64::MAX),
            at
        ],
    )?;
    let (state, next, recorded) = match outcome.status {
        Some(410) if requeued => ("pending", due_at, Recorded::Disabled),
        _ if requeued => ("pending", due_at, Recorded::Requeued),
        Some(200..=299) => ("delivered", None, Recorded::Delivered),
        Some(410) => ("failed", None, Recorded::Disabled),
        _ => match schedule.get(due.retry_index) {
            Some(wait) => {
                let next = now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                ("pending", Some(next), Recorded::Retry(next))
            }
            None => ("failed", None, Recorded::Failed),
        },
    };
    tx.execute(
        "UPDATE webhook_deliveries SET state = ?1, attempts = attempts + 1, next_attempt_at = ?2, updated_at = ?3,
             scheduled_from = CASE WHEN ?5 THEN attempts + 1 ELSE scheduled_from END
         WHERE id = ?4",
        params![state, next, at, due.delivery_id, requeued],
    )?;
    if recorded == Recorded::Disabled {
        tx.execute(
            "UPDATE webhooks SET active = 0, disabled_reason = ?1, updated_at = ?2 WHERE id = ?3",
            params![format!("the receiver answered 410 Gone at {at}"), at, due.webhook_id],
        )?;
    }
    tx.commit()?;
    Ok(recorded)
}

/// One attempt, as `GET /api/webhooks/:id/deliveries` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    /// The attempt's own number in the log.
    pub id: i64,
    /// The delivery (also the `webhook-id` header), the same on every attempt.
    pub delivery_id: String,
    pub event_id: i64,
    pub event_type: String,
    /// 1 for the first attempt at this delivery.
    pub attempt: u32,
    /// The receiver's answer, if any.
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: String,
    /// The delivery now: `pending` (another attempt is queued), `delivered` or `failed`.
    pub delivery_state: String,
}

/// A subscription's attempts, newest first.
///
/// # Errors
/// SQLite failures.
pub fn attempts(conn: &Connection, webhook_id: Uuid, page: Page) -> Result<Vec<Attempt>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.delivery_id, d.event_id, d.event_type, a.attempt, a.status_code, a.error, a.duration_ms,
                a.at, d.state
         FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
         WHERE a.webhook_id = ?1 ORDER BY a.id DESC LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![webhook_id.to_string(), page.limit, page.offset], |r| {
        Ok(Attempt {
            id: r.get(0)?,
            delivery_id: r.get(1)?,
            event_id: r.get(2)?,
            event_type: r.get(3)?,
            attempt: r.get(4)?,
            status_code: r.get(5)?,
            error: r.get(6)?,
            duration_ms: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
            at: r.get(8)?,
            delivery_state: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes finished deliveries (and their attempts) last touched before `max_age`.
///
/// # Errors
/// SQLite failures.
pub fn prune(conn: &Connection, max_age: Duration) -> Result<usize, DbError> {
    Ok(conn.execute("DELETE FROM webhook_deliveries WHERE state != 'pending' AND updated_at < ?1", [cutoff(max_age)])?)
}
