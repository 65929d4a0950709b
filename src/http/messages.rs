//! `/api/instances/:id/messages` and `/complete`: replies from people, questions
//! and the end from agents (with their instance token).

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;
use uuid::Uuid;

use super::instances::{instance_id, load, running};
use super::json::Json;
use super::middleware::guard::Caller;
use super::{blocking, AppState};
use crate::actors::instance::{Asked, Deliver, End, Ending};
use crate::db::messages as store;
use crate::domain::instance::{Instance, InstanceStatus};
use crate::domain::message::{Delivery, Message, NewMessage, Sender};
use crate::domain::now;
use crate::domain::state::is_final;
use crate::error::{AppError, ErrorBody};

/// Longest long poll, in seconds.
const MAX_WAIT_SECS: u64 = 60;

/// Query of `GET /api/instances/:id/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Only messages after this one.
    #[param(value_type = Option<Uuid>)]
    pub after: Option<String>,
    /// Hold the request up to this many seconds (≤ 60) until a newer message exists.
    #[param(value_type = Option<u32>)]
    pub wait: Option<String>,
}

/// Messages of an instance, oldest first; with `wait`, a long poll.
#[utoipa::path(operation_id = "list_messages", tag = "messages", params(("id" = Uuid, Path), MessageQuery), responses(
    (status = 200, description = "Messages, oldest first", body = [Message]),
    (status = 404, description = "No such instance", body = ErrorBody),
    (status = 422, description = "Bad after or wait", body = ErrorBody)))]
#[get("/api/instances/{id}/messages")]
pub async fn list(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<MessageQuery>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let after = query
        .after
        .as_deref()
        .map(|a| Uuid::parse_str(a).map_err(|_| AppError::invalid("after", "must be a message id")))
        .transpose()?;
    let wait = match query.wait.as_deref() {
        None => 0,
        Some(w) => w
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= MAX_WAIT_SECS)
            .ok_or_else(|| AppError::invalid("wait", "must be 0 to 60 seconds"))?,
    };
    load(&state, id).await?;
    let mut wake = state.shared.message_wake.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let found = blocking(&state.db.agents, move |conn| {
            store::after(conn, id, after, 1000)?
                .ok_or_else(|| AppError::invalid("after", "is not a message of this instance"))
        })
        .await?;
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(HttpResponse::Ok().json(found));
        }
        loop {
            match tokio::time::timeout_at(deadline, wake.recv()).await {
                Ok(Ok(woken)) if woken != id => continue,
                _ => break,
            }
        }
    }
}

/// Post a message: a user's reply is typed into the terminal (now, or when the
/// program next waits); an agent's question may mark the instance as waiting.
#[utoipa::path(operation_id = "create_message", tag = "messages", params(("id" = Uuid, Path)), request_body = NewMessage, responses(
    (status = 201, description = "Stored (delivered_at set once typed)", body = Message),
    (status = 409, description = "The instance ended", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[post("/api/instances/{id}/messages")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<NewMessage>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let body = body.0;
    let sender = match (caller, body.sender_type) {
        (Caller::Instance(_), Some(Sender::User)) => {
            return Err(AppError::Forbidden {
                code: "forbidden_scope",
                message: "an instance token posts agent messages only".into(),
            })
        }
        (Caller::Instance(_), _) => Sender::Agent,
        (Caller::Operator, given) => given.unwrap_or(Sender::User),
    };
    body.validate(sender)?;
    let instance = load(&state, id).await?;
    if is_final(instance.status) {
        return Err(AppError::not_running(instance.status.as_str()));
    }
    if sender == Sender::User && body.deliver == Delivery::Now && instance.status == InstanceStatus::Idle {
        return Err(AppError::not_running("queued; it cannot be typed into yet"));
    }
    let mut message = Message {
        id: Uuid::new_v4(),
        agent_instance_id: id,
        sender_type: sender,
        content: body.content,
        requires_user_input: body.requires_user_input,
        options: body.options,
        created_at: now(),
        delivered_at: None,
    };
    let stored = message.clone();
    let agent_id = instance.agent_id;
    blocking(&state.db.agents, move |conn| Ok(store::insert(conn, &stored, agent_id)?)).await?;
    let _ = state.shared.message_wake.send(id);
    if let Some(addr) = state.shared.directory.get(id) {
        if sender == Sender::User {
            let deliver = Deliver { message: message.clone(), now: body.deliver == Delivery::Now };
            if let Ok(Ok(Some(typed))) = addr.send(deliver).await {
                message.delivered_at = typed.await.ok();
            }
        } else if message.requires_user_input {
            let _ = addr.send(Asked { prompt: message.content.clone() }).await;
        }
    }
    Ok(HttpResponse::Created().json(message))
}

/// The agent declares it is done (→ completed; its process group is ended).
#[utoipa::path(operation_id = "complete_instance", tag = "messages", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "Completed", body = Instance),
    (status = 409, description = "Not running", body = ErrorBody)))]
#[post("/api/instances/{id}/complete")]
pub async fn complete(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let addr = running(&state, id).await?;
    if let Ok(done) = addr.send(End(Ending::Complete)).await {
        let _ = done.await;
    }
    Ok(HttpResponse::Ok().json(load(&state, id).await?))
}
