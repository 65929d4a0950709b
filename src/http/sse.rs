//! `GET /api/events`: every change, as Server-Sent Events, resumable.
//!
//! Each connection has a task that follows the event log from its cursor
//! (`events::Follow`) and sends through a small bounded channel: a client that
//! stops reading stops its own task, nothing else, and the log (not memory) holds
//! what it has not read yet.

use std::time::Duration;

use actix_web::{get, web, HttpRequest, Responder};
use actix_web_lab::sse::{self, Sse};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use super::json::uuid_param;
use super::{blocking, AppState};
use crate::db::events::{self as log, Filter};
use crate::domain::event::EventKind;
use crate::error::{AppError, ErrorBody};

/// Events buffered per connection before the task waits for the client.
const QUEUE: usize = 64;
/// Sent first: how long a browser waits before reconnecting.
pub const RETRY: Duration = Duration::from_secs(2);
/// Comment lines that keep idle connections open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Filters of `GET /api/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    #[param(value_type = Option<Uuid>)]
    pub agent_id: Option<String>,
    #[param(value_type = Option<Uuid>)]
    pub instance_id: Option<String>,
    /// Comma-separated event types, e.g. `instance.status,message.created`.
    pub types: Option<String>,
    /// For clients that cannot set the `Last-Event-ID` header.
    pub last_event_id: Option<String>,
}

impl EventsQuery {
    fn filter(&self) -> Result<Filter, AppError> {
        let types = match self.types.as_deref() {
            None => None,
            Some(list) => {
                let types: Vec<String> =
                    list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
                if let Some(bad) = types.iter().find(|t| EventKind::parse(t).is_none()) {
                    return Err(AppError::invalid(
                        "types",
                        format!("unknown event type {bad:?}; known: {}", EventKind::names().join(", ")),
                    ));
                }
                Some(types)
            }
        };
        Ok(Filter {
            agent_id: uuid_param(self.agent_id.as_deref(), "agent_id")?,
            instance_id: uuid_param(self.instance_id.as_deref(), "instance_id")?,
            types,
        })
    }
}

/// The `Last-Event-ID` header, or the `last_event_id` query parameter.
pub fn last_event_id(req: &HttpRequest, query: Option<&str>) -> Option<String> {
    req.headers().get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned).or(query.map(str::to_owned))
}

/// A data event.
pub fn event(kind: &str, id: impl Into<String>, data: impl Into<String>) -> sse::Event {
    sse::Event::Data(sse::Data::new(data.into()).event(kind.to_owned()).id(id.into()))
}

/// An SSE response fed by `rx`: `retry` first, keep-alive comments every 15 s,
/// and a header asking proxies not to buffer it.
pub fn respond(rx: mpsc::Receiver<sse::Event>) -> impl Responder {
    Sse::from_infallible_receiver(rx)
        .with_retry_duration(RETRY)
        .with_keep_alive(KEEP_ALIVE)
        .customize()
        .insert_header(("X-Accel-Buffering", "no"))
}

/// Every change as it happens (`task.*`, `agent.*`, `instance.*`, `message.created`).
#[utoipa::path(operation_id = "events", tag = "events", params(EventsQuery), responses(
    (status = 200, description = "An event stream; resumes after Last-Event-ID", content_type = "text/event-stream"),
    (status = 422, description = "Unknown type, bad id", body = ErrorBody)))]
#[get("/api/events")]
pub async fn subscribe(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<EventsQuery>,
) -> Result<impl Responder, AppError> {
    let filter = query.filter()?;
    let resume = match last_event_id(&req, query.last_event_id.as_deref()) {
        None => None,
        Some(id) => {
            Some(id.trim().parse::<i64>().map_err(|_| AppError::invalid("last_event_id", "must be an event id"))?)
        }
    };
    let (oldest, head) = blocking(&state.db.agents, |conn| Ok(log::bounds(conn)?)).await?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let cursor = match resume {
        Some(id) if id >= oldest - 1 && id <= head => id,
        None => head,
        Some(id) => {
            let data = serde_json::json!({ "reason": "last_event_id_unknown", "last_event_id": id, "oldest": oldest });
            let _ = tx.try_send(event("reset", head.to_string(), data.to_string()));
            head
        }
    };
    actix_web::rt::spawn(pump(state.into_inner(), filter, cursor, tx));
    Ok(respond(rx))
}

async fn pump(state: std::sync::Arc<AppState>, filter: Filter, cursor: i64, tx: mpsc::Sender<sse::Event>) {
    let mut log = state.shared.bus.follow(filter, cursor);
    loop {
        let batch = tokio::select! {
            batch = log.next() => batch,
            () = tx.closed() => return,
        };
        // The server stops or the log cannot be read: the client reconnects and resumes.
        let Ok(batch) = batch else { return };
        for e in batch {
            if tx.send(event(&e.kind, e.seq.to_string(), e.data)).await.is_err() {
                return;
            }
        }
    }
}
