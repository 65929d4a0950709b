//! Permission requests: held open while someone (or a rule) decides, listed per
//! instance, decided once with `POST /api/approvals/:id`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{get, post, web, HttpResponse};
use futures_core::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::instances::{instance_id, load};
use super::json::Json;
use super::{blocking, AppState};
use crate::actors::instance::{Hooked, InstanceActor};
use crate::db::{agents, approvals as store, Page};
use crate::domain::instance::Instance;
use crate::domain::integration::{Approval, ApprovalStatus, Decision};
use crate::domain::now;
use crate::error::{AppError, ErrorBody};
use crate::integration::claude::permission_answer;

/// Query of `GET /api/instances/:id/approvals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// Only requests in this state: pending, allowed, denied, expired or withdrawn.
    pub status: Option<String>,
}

/// An instance's permission requests, newest first (at most 500).
#[utoipa::path(operation_id = "list_approvals", tag = "approvals", params(("id" = Uuid, Path), ApprovalQuery), responses(
    (status = 200, description = "Requests, newest first", body = [Approval]),
    (status = 404, description = "No such instance", body = ErrorBody),
    (status = 422, description = "Unknown status", body = ErrorBody)))]
#[get("/api/instances/{id}/approvals")]
pub async fn list(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<ApprovalQuery>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let status = query.status.as_deref().map(ApprovalStatus::parse).transpose()?;
    load(&state, id).await?;
    let page = Page { limit: 500, offset: 0 };
    let found = blocking(&state.db.agents, move |conn| Ok(store::of_instance(conn, id, status, page)?)).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Body of `POST /api/approvals/:id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub decision: Decision,
    /// Told to the agent with the decision (a denial's reason), at most 2000 characters.
    pub message: Option<String>,
}

/// Decide a pending permission request; the first decision wins.
#[utoipa::path(operation_id = "decide_approval", tag = "approvals", params(("id" = Uuid, Path)), request_body = DecisionRequest, responses(
    (status = 200, description = "Decided; the agent's hook gets the answer", body = Approval),
    (status = 404, description = "No such request", body = ErrorBody),
    (status = 409, description = "Decided already (or expired, or withdrawn)", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[post("/api/approvals/{id}")]
pub async fn decide(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<DecisionRequest>,
) -> Result<HttpResponse, AppError> {
    let id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound(format!("approval {id} not found")))?;
    let DecisionRequest { decision, message } = body.0;
    if message.as_ref().is_some_and(|m| m.chars().count() > 2000 || m.contains('\0')) {
        return Err(AppError::invalid("message", "must be at most 2000 characters without NUL"));
    }
    let status = match decision {
        Decision::Allow => ApprovalStatus::Allowed,
        Decision::Deny => ApprovalStatus::Denied,
    };
    let decided =
        blocking(&state.db.agents, move |conn| Ok(store::decide(conn, id, status, "user", message.as_deref())?))
            .await?;
    match decided {
        None => Err(AppError::NotFound(format!("approval {id} not found"))),
        Some(Err(current)) => Err(AppError::Conflict {
            code: "already_decided",
            message: format!(
                "the request is {} already{}",
                current.status.as_str(),
                current.decided_by.map(|by| format!(" (by {by})")).unwrap_or_default()
            ),
        }),
        Some(Ok(approval)) => {
            state.shared.hooks.decided(approval.clone());
            Ok(HttpResponse::Ok().json(approval))
        }
    }
}

/// Closes a held request as withdrawn if its hook goes away undecided (the agent
/// was answered in its terminal, or ended).
struct Withdraw {
    state: Option<web::Data<AppState>>,
    id: Uuid,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else { return };
        let id = self.id;
        state.shared.hooks.forget(id);
        actix_web::rt::spawn(async move {
            let closed = blocking(&state.db.agents, move |conn| {
                Ok(store::decide(conn, id, ApprovalStatus::Withdrawn, "agent", None)?)
            })
            .await;
            if let Err(e) = closed {
                tracing::warn!(approval = %id, error = %e, "could not close a withdrawn request");
            }
        });
    }
}

/// The hook's answer to a permission request: at once (a rule decided), or held
/// until someone decides or the hold time passes.
pub(super) enum Answer {
    Now(Value),
    Held(Pin<Box<dyn Future<Output = Value>>>),
}

/// A permission request from an agent's hook: decided at once by the first rule
/// that matches, otherwise held (the instance waits on it) until someone decides or
/// the hold time passes. The hook's answer: the decision, or nothing (the agent's
/// own prompt then decides).
pub(super) async fn request(
    state: &web::Data<AppState>,
    instance: &Instance,
    addr: &actix::Addr<InstanceActor>,
    tool_name: String,
    tool_input: Value,
) -> Result<Answer, AppError> {
    let agent_id = instance.agent_id;
    let agent = blocking(&state.db.agents, move |conn| Ok(agents::get(conn, agent_id)?)).await?;
    let mut approval = Approval::new(instance.id, instance.agent_id, &tool_name, tool_input);
    let rules = agent.map(|a| a.settings.approvals).unwrap_or_default();
    if let Some((n, rule)) = rules.iter().enumerate().find(|(_, r)| r.matches(&tool_name, &approval.tool_input)) {
        let allow = rule.decision == Decision::Allow;
        approval.status = if allow { ApprovalStatus::Allowed } else { ApprovalStatus::Denied };
        approval.decided_by =
            Some(format!("rule {}: {} {}", n + 1, rule.tool, rule.pattern.as_deref().unwrap_or("(any)")));
        approval.decided_at = Some(now());
        if !allow {
            approval.message = Some("denied by a Switchboard approval rule".into());
        }
        let stored = approval.clone();
        blocking(&state.db.agents, move |conn| Ok(store::insert(conn, &stored)?)).await?;
        return Ok(Answer::Now(permission_answer(allow, approval.message.as_deref())));
    }
    let decided = state.shared.hooks.hold(approval.id);
    let stored = approval.clone();
    if let Err(e) = blocking(&state.db.agents, move |conn| Ok(store::insert(conn, &stored)?)).await {
        state.shared.hooks.forget(approval.id);
        return Err(e);
    }
    let withdraw = Withdraw { state: Some(state.clone()), id: approval.id };
    let question = Some(approval.question.clone());
    let options = vec!["allow".to_owned(), "deny".to_owned()];
    let waiting = Hooked::Waiting { reason: "hook: PermissionRequest".into(), prompt: question, options, now: true };
    let _ = addr.send(waiting).await;
    let (state, addr) = (state.clone(), addr.clone());
    Ok(Answer::Held(Box::pin(async move {
        let mut withdraw = withdraw;
        let outcome = tokio::time::timeout(state.shared.hooks.hold, decided).await;
        withdraw.state = None;
        let decided = match outcome {
            Ok(Ok(decided)) => decided,
            // Let go of by a later report (the agent moved on): nothing to answer.
            Ok(Err(_)) => return json!({}),
            Err(_) => match expire(&state, approval.id).await {
                // Decided at the last moment: that decision stands.
                Some(current) => current,
                None => return json!({}),
            },
        };
        let allow = decided.status == ApprovalStatus::Allowed;
        let reason = format!("hook: approval {}", decided.status.as_str());
        let _ = addr.send(Hooked::Working { reason }).await;
        permission_answer(allow, decided.message.as_deref())
    })))
}

/// Marks a request nobody decided in time as expired; a decision that came first
/// is returned instead.
async fn expire(state: &AppState, id: Uuid) -> Option<Approval> {
    state.shared.hooks.forget(id);
    let expired =
        blocking(&state.db.agents, move |conn| Ok(store::decide(conn, id, ApprovalStatus::Expired, "timeout", None)?))
            .await;
    match expired {
        Ok(Some(Err(current))) if matches!(current.status, ApprovalStatus::Allowed | ApprovalStatus::Denied) => {
            Some(current)
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(approval = %id, error = %e, "could not mark a request expired");
            None
        }
    }
}

/// The answer to a held request as a response body: a space every second while it
/// is held (JSON allows leading white space), then the answer. Writing is how a
/// hook that went away (its agent was answered in its terminal) is noticed: the body
/// is dropped, and with it the held request, which is then withdrawn.
pub(super) struct HeldBody {
    answer: Option<Pin<Box<dyn Future<Output = Value>>>>,
    tick: tokio::time::Interval,
}

impl HeldBody {
    pub(super) fn new(answer: Pin<Box<dyn Future<Output = Value>>>) -> Self {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        HeldBody { answer: Some(answer), tick }
    }
}

impl Stream for HeldBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(answer) = self.answer.as_mut() else { return Poll::Ready(None) };
        if let Poll::Ready(value) = answer.as_mut().poll(cx) {
            self.answer = None;
            return Poll::Ready(Some(Ok(Bytes::from(value.to_string()))));
        }
        match self.tick.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(b" ")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A later report from the agent means a held request was answered elsewhere (in
/// its terminal): close it, and let go of its hook.
pub(super) async fn withdraw_pending(state: &AppState, instance: Uuid) -> Result<(), AppError> {
    let closed = blocking(&state.db.agents, move |conn| {
        Ok(store::close_pending(conn, instance, ApprovalStatus::Withdrawn, "agent")?)
    })
    .await?;
    for approval in closed {
        state.shared.hooks.forget(approval.id);
    }
    Ok(())
}
