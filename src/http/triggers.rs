//! `POST /api/hooks/agents/:name`: inbound triggers. A CI job or a chat bot starts
//! an instance of an agent, authorised by the agent's trigger secret instead of the
//! API token: a Standard Webhooks signature (timestamp within ±5 minutes) or
//! GitHub's `X-Hub-Signature-256` with its `X-GitHub-Delivery` id, checked over the
//! raw body before it is parsed. A repeated delivery id answers with the instance
//! the first one started. A GitHub signature carries no timestamp, so the delivery
//! id is what protects it from replay: it is required, and its receipt is kept
//! for good.
//!
//! An unknown agent, or one without a trigger secret, is answered exactly like a
//! wrong signature — same status, same message, the same work done (the signature
//! is checked against a throwaway secret) — so triggers reveal nothing about which
//! agents exist.

use std::collections::BTreeMap;

use actix_web::http::header::HeaderMap;
use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::instances::{start, NewInstanceRequest};
use super::json::{parse, RawJson};
use super::{blocking, AppState};
use crate::db::{agents, triggers};
use crate::error::{AppError, ErrorBody};
use crate::webhooks::signing::{self, VerifyError};

/// Longest accepted delivery id.
const MAX_DELIVERY_ID: usize = 255;
/// What the signature of a trigger for an unknown agent is checked against.
const NO_SECRET: &str = "switchboard: this agent has no trigger secret";

/// Body of a trigger (all optional; an empty body is `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// Typed (then Enter) once the program waits for input.
    pub prompt: Option<String>,
    /// A task this instance works on.
    pub task_id: Option<i64>,
    /// Extra environment variables for this instance only: only those named in the
    /// agent's `settings.trigger_env` (422 for any other).
    pub env: Option<BTreeMap<String, String>>,
    /// For `worktree` agents: the ref the instance's branch starts from.
    pub base: Option<String>,
}

/// The same fields in a foreign payload (GitHub's): other keys are ignored.
#[derive(Debug, Default, Deserialize)]
struct ForeignPayload {
    prompt: Option<String>,
    task_id: Option<i64>,
    env: Option<BTreeMap<String, String>>,
}

/// The answer to a trigger.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerAccepted {
    pub instance_id: Uuid,
    /// The instance's event stream (`curl -N` it with the API token).
    pub stream_url: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, VerifyError> {
    headers.get(name).map(|v| v.to_str().map_err(|_| VerifyError::Malformed(name))).transpose()
}

/// Checks the signature; returns the delivery id (if any) and whether the body is
/// a foreign payload (GitHub's) whose unknown keys are ignored.
fn verify(headers: &HeaderMap, secret: &str, body: &[u8]) -> Result<(Option<String>, bool), VerifyError> {
    if let Some(signatures) = header(headers, "webhook-signature")? {
        let id = header(headers, "webhook-id")?.ok_or(VerifyError::Malformed("webhook-id"))?;
        let timestamp = header(headers, "webhook-timestamp")?.ok_or(VerifyError::Malformed("webhook-timestamp"))?;
        if id.is_empty() || id.len() > MAX_DELIVERY_ID {
            return Err(VerifyError::Malformed("webhook-id"));
        }
        let now = chrono::Utc::now().timestamp();
        signing::verify_standard(&signing::key_of(secret), id, timestamp, signatures, body, now)?;
        return Ok((Some(id.to_owned()), false));
    }
    if let Some(signature) = header(headers, "x-hub-signature-256")? {
        let delivery = header(headers, "x-github-delivery")?
            .filter(|d| !d.is_empty() && d.len() <= MAX_DELIVERY_ID)
            .ok_or(VerifyError::Malformed("X-GitHub-Delivery"))?;
        signing::verify_github(secret, signature, body)?;
        return Ok((Some(triggers::github_delivery(delivery)), true));
    }
    Err(VerifyError::Missing)
}

fn accepted(req: &HttpRequest, instance_id: Uuid, replayed: bool) -> HttpResponse {
    // The guard has checked the Host header against this server's names.
    let host = req.headers().get(actix_web::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let body = TriggerAccepted { instance_id, stream_url: format!("http://{host}/api/instances/{instance_id}/stream") };
    let mut response = HttpResponse::Accepted();
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.json(body)
}

/// Start an instance of the named agent, authorised by its trigger secret.
#[utoipa::path(operation_id = "trigger_agent", tag = "webhooks", security(()),
    params(("name" = String, Path, description = "The agent's name")),
    params(
        ("webhook-id" = Option<String>, Header, description = "Standard Webhooks: the delivery id (a repeat answers with the first instance)"),
        ("webhook-timestamp" = Option<i64>, Header, description = "Standard Webhooks: Unix seconds, within 5 minutes of the server's clock"),
        ("webhook-signature" = Option<String>, Header, description = "Standard Webhooks: v1,BASE64 HMAC-SHA256 of id.timestamp.body"),
        ("X-Hub-Signature-256" = Option<String>, Header, description = "GitHub: sha256=HEX HMAC-SHA256 of the body"),
        ("X-GitHub-Delivery" = Option<String>, Header, description = "GitHub: the delivery id, required with X-Hub-Signature-256 (a repeat answers with the first instance, for good)"),
    ),
    request_body = TriggerRequest, responses(
    (status = 202, description = "The instance was created (running or queued)", body = TriggerAccepted),
    (status = 401, description = "Unknown agent, no trigger secret, or a bad, missing or stale signature", body = ErrorBody),
    (status = 422, description = "Invalid field, or an env variable the agent's settings.trigger_env does not allow", body = ErrorBody),
    (status = 429, description = "Too many failed trigger signatures from this address", body = ErrorBody)))]
#[post("/api/hooks/agents/{name}")]
pub async fn trigger(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, AppError> {
    let ip = req.peer_addr().map(|a| a.ip());
    state.trigger_failures.refuse_if_blocked(ip)?;
    let refuse = |why: &VerifyError| {
        state.trigger_failures.failed_from(ip);
        AppError::Unauthorized(format!("trigger refused: {why}"))
    };
    let name = name.into_inner();
    let agent = blocking(&state.db.agents, move |conn| Ok(agents::by_name(conn, &name)?)).await?;
    let agent = agent.and_then(|a| a.settings.trigger_secret.clone().map(|s| (a, s)));
    let secret = agent.as_ref().map_or(NO_SECRET, |(_, secret)| secret.as_str());
    let verified = verify(req.headers(), secret, &body.0);
    let (agent, (delivery, foreign)) = match (agent, verified) {
        (Some((agent, _)), Ok(verified)) => (agent, verified),
        (None, Ok(_)) => return Err(refuse(&VerifyError::Mismatch)),
        (_, Err(e)) => return Err(refuse(&e)),
    };
    let agent_id = agent.id;
    let first_of =
        |delivery: String| blocking(&state.db.agents, move |conn| Ok(triggers::receipt(conn, agent_id, &delivery)?));
    if let Some(delivery) = delivery.clone() {
        if let Some(instance_id) = first_of(delivery).await? {
            return Ok(accepted(&req, instance_id, true));
        }
    }
    let fields = if body.0.is_empty() {
        TriggerRequest::default()
    } else if foreign {
        let p: ForeignPayload = parse(&body.0)?;
        TriggerRequest { prompt: p.prompt, task_id: p.task_id, env: p.env, base: None }
    } else {
        parse(&body.0)?
    };
    if let Some(env) = &fields.env {
        agent.settings.check_trigger_env(env.keys())?;
    }
    let request = NewInstanceRequest {
        prompt: fields.prompt,
        task_id: fields.task_id,
        env: fields.env,
        base: fields.base,
        ..Default::default()
    };
    match start(&state, agent, request, delivery.clone(), None).await {
        Ok(instance) => Ok(accepted(&req, instance.id, false)),
        // A concurrent repeat committed its receipt first (the receipts' primary
        // key decides, with no lock held across a start): answer with its instance.
        Err(AppError::Conflict { code: "duplicate_delivery", message }) => {
            match first_of(delivery.unwrap_or_default()).await? {
                Some(instance_id) => Ok(accepted(&req, instance_id, true)),
                None => Err(AppError::Conflict { code: "duplicate_delivery", message }),
            }
        }
        Err(e) => Err(e),
    }
}
