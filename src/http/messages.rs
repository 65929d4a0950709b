//! `/api/instances/:id/messages` and `/complete`: replies from people, questions
//! and the end from agents (with their instance token).

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::instances::{instance_id, load, running};
use super::json::Json;
use super::middleware::guard::Caller;
use super::{blocking, AppState};
use crate::actors::instance::{Answer, Asked, Deliver, End, Ending};
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
/// program next waits); an agent's question may mark the instance as waiting. A reply
/// with `in_reply_to` is typed only if the instance still waits on that question.
#[utoipa::path(operation_id = "create_message", tag = "messages", params(("id" = Uuid, Path)), request_body = NewMessage, responses(
    (status = 201, description = "Stored (delivered_at set once typed)", body = Message),
    (status = 409, description = "The instance ended; or moved_on: it no longer waits on the question named by in_reply_to (error.now says what it waits on now)", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[post("/api/instances/{id}/messages")]
pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<NewMessage>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let message = post(&state, caller, id, body.0).await?;
    Ok(HttpResponse::Created().json(message))
}

/// Stores (and types, or holds) one message for one instance.
async fn post(state: &AppState, caller: Caller, id: Uuid, body: NewMessage) -> Result<Message, AppError> {
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
    let instance = load(state, id).await?;
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
    if let Some(in_reply_to) = body.in_reply_to {
        return answer(state, &instance, message, in_reply_to).await;
    }
    if is_final(instance.status) {
        return Err(AppError::not_running(instance.status.as_str()));
    }
    if sender == Sender::User && body.deliver == Delivery::Now && instance.status == InstanceStatus::Idle {
        return Err(AppError::not_running("queued; it cannot be typed into yet"));
    }
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
            let _ = addr.send(Asked { prompt: message.content.clone(), options: message.options.clone() }).await;
        }
    }
    Ok(message)
}

/// A reply to one question: typed and stored only if the instance still waits on it.
async fn answer(
    state: &AppState,
    instance: &Instance,
    mut message: Message,
    in_reply_to: String,
) -> Result<Message, AppError> {
    let moved = |status: InstanceStatus, prompt: Option<String>, wait_id: Option<String>| {
        let now = match &prompt {
            Some(_) => "it waits on another question now".to_owned(),
            None => format!("it is {} now", status.as_str()),
        };
        AppError::MovedOn {
            message: format!(
                "nothing was typed: the instance no longer waits on the question {in_reply_to} named; {now}"
            ),
            status: status.as_str().to_owned(),
            prompt,
            wait_id,
        }
    };
    let Some(addr) = state.shared.directory.get(instance.id) else {
        return Err(moved(instance.status, None, None));
    };
    let asked = Answer { message: message.clone(), agent_id: instance.agent_id, in_reply_to: in_reply_to.clone() };
    match addr.send(asked).await {
        Ok(Ok(typed)) => {
            message.delivered_at = typed.await.ok();
            Ok(message)
        }
        Ok(Err(now)) => Err(moved(now.status, now.prompt, now.wait_id)),
        // The actor stopped between the lookup and the request: it ended.
        Err(_) => Err(moved(InstanceStatus::Terminated, None, None)),
    }
}

/// One recipient of a batch reply.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchTarget {
    pub instance_id: Uuid,
    /// The `wait_id` of the question this instance was asked, as read.
    pub in_reply_to: Option<String>,
}

/// The same reply to many instances.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchMessage {
    pub content: String,
    /// 1–500 instances, each at most once.
    pub to: Vec<BatchTarget>,
    #[serde(default)]
    pub deliver: Delivery,
}

/// What became of a batch reply for one instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub instance_id: Uuid,
    /// 201, or the status a single reply would have got (404, 409, 422 …).
    pub status: u16,
    pub message: Option<Message>,
    pub error: Option<crate::error::ErrorDetail>,
}

/// Reply to many instances at once: each one is answered (or refused) on its own,
/// exactly as `POST /api/instances/{id}/messages` would.
#[utoipa::path(operation_id = "create_messages_batch", tag = "messages", request_body = BatchMessage, responses(
    (status = 200, description = "A result per instance, in the order given", body = Object),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[post("/api/messages/batch")]
pub async fn batch(
    caller: Caller,
    state: web::Data<AppState>,
    body: Json<BatchMessage>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    if body.to.is_empty() || body.to.len() > 500 {
        return Err(AppError::invalid("to", "must name 1 to 500 instances"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = body.to.iter().find(|t| !seen.insert(t.instance_id)) {
        return Err(AppError::invalid("to", format!("instance {} is named twice", twice.instance_id)));
    }
    let mut results = Vec::with_capacity(body.to.len());
    for target in body.to {
        let one = NewMessage {
            content: body.content.clone(),
            sender_type: None,
            requires_user_input: false,
            options: Vec::new(),
            deliver: body.deliver,
            in_reply_to: target.in_reply_to,
        };
        results.push(match post(&state, caller, target.instance_id, one).await {
            Ok(message) => {
                BatchResult { instance_id: target.instance_id, status: 201, message: Some(message), error: None }
            }
            Err(e) => BatchResult {
                instance_id: target.instance_id,
                status: actix_web::ResponseError::status_code(&e).as_u16(),
                message: None,
                error: Some(e.detail()),
            },
        });
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "results": results })))
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
