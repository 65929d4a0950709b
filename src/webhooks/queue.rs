//! Turning events into queued deliveries: the fan-out of the log to every
//! subscription that wants each event, and redelivery on request. Bodies are
//! rendered here ([`payload`]); `db::deliveries` stores them.

use std::collections::HashMap;

use rusqlite::Connection;
use uuid::Uuid;

use super::payload;
use crate::db::deliveries::{self as store, Subscriber};
use crate::db::events::{self, Event};
use crate::db::{agents, write_tx, DbError};
use crate::domain::webhook::Format;

/// Queues a delivery of each of `batch` (the events after `from`, oldest first)
/// for every active subscription that wants it, and moves the dispatch cursor past
/// them, in one transaction.
///
/// # Errors
/// SQLite failures, or a cursor not at `from`: nothing is queued and the cursor stays.
pub fn fan_out(conn: &mut Connection, from: i64, batch: &[Event]) -> Result<(), DbError> {
    let Some(last) = batch.last().map(|e| e.seq) else { return Ok(()) };
    let tx = write_tx(conn)?;
    let subscribers: Vec<Subscriber> = store::subscribers(&tx)?;
    let mut names = Names::default();
    for event in batch {
        for sub in subscribers.iter().filter(|s| s.wants(event)) {
            let body = body_of(&tx, sub.format, event, &mut names)?;
            store::queue(&tx, &sub.id, event, &body)?;
        }
    }
    store::advance(&tx, from, last)?;
    tx.commit()?;
    Ok(())
}

/// Why a redelivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("webhook {0} not found")]
    NoWebhook(Uuid),
    #[error("event {0} is not in the event log (never existed, or pruned by retention)")]
    NoEvent(i64),
    #[error("the subscription is not active; turn it on first")]
    Inactive,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Queues `event_id` for the subscription again, due now: a delivery that exists is
/// requeued with the same `webhook-id` and a fresh retry schedule; otherwise one is
/// made from the event log. Returns the delivery id.
///
/// # Errors
/// See [`RedeliverError`].
pub fn redeliver(conn: &mut Connection, webhook_id: Uuid, event_id: i64) -> Result<String, RedeliverError> {
    let tx = write_tx(conn)?;
    let (active, format) = store::subscription(&tx, webhook_id)?.ok_or(RedeliverError::NoWebhook(webhook_id))?;
    if !active {
        return Err(RedeliverError::Inactive);
    }
    let id = match store::requeue(&tx, webhook_id, event_id)? {
        Some(id) => id,
        None => {
            let event = events::one(&tx, event_id)?.ok_or(RedeliverError::NoEvent(event_id))?;
            let body = body_of(&tx, format, &event, &mut Names::default())?;
            store::queue(&tx, &webhook_id.to_string(), &event, &body)?
        }
    };
    tx.commit().map_err(DbError::from)?;
    Ok(id)
}

/// The body of one event for one subscription.
fn body_of(conn: &Connection, format: Format, event: &Event, names: &mut Names) -> Result<String, DbError> {
    let data: serde_json::Value =
        serde_json::from_str(&event.data).map_err(|_| DbError::Corrupt("events.data".into()))?;
    Ok(match format {
        Format::Standard => payload::standard(&event.kind, event.seq, &event.at, &data),
        Format::Slack => {
            let name = match &event.agent_id {
                Some(agent) => names.get(conn, agent)?,
                None => None,
            };
            let name = name.or_else(|| data["agent"]["name"].as_str().map(str::to_owned));
            payload::slack(&event.kind, name.as_deref(), &event.data)
        }
    })
}

/// Agent names looked up during one fan-out.
#[derive(Default)]
struct Names(HashMap<String, Option<String>>);

impl Names {
    fn get(&mut self, conn: &Connection, agent: &str) -> Result<Option<String>, DbError> {
        if let Some(name) = self.0.get(agent) {
            return Ok(name.clone());
        }
        let name = agents::name_of(conn, agent)?;
        self.0.insert(agent.to_owned(), name.clone());
        Ok(name)
    }
}
