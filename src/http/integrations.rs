//! Coding agents: the presets, the reports their programs send while they run
//! (`switchboard hook …` posts them with the instance token), and resuming an
//! ended conversation.

use actix_web::{get, post, web, HttpResponse};
use serde_json::{json, Value};
use uuid::Uuid;

use super::approvals;
use super::instances::{instance_id, load, running, start, NewInstanceRequest};
use super::{blocking, AppState};
use crate::actors::instance::Hooked;
use crate::actors::registry::Resume;
use crate::db::{agents, instances, messages};
use crate::domain::instance::{Instance, InstanceStatus};
use crate::domain::integration::Preset;
use crate::domain::message::{Message, Sender};
use crate::domain::now;
use crate::domain::state::is_final;
use crate::error::{AppError, ErrorBody};
use crate::integration::{cannot_resume, claude, codex, Action};

/// Most bytes of one report.
const MAX_REPORT_BYTES: usize = 1 << 20;

/// The built-in agent templates, each with whether its program is found.
#[utoipa::path(operation_id = "list_presets", tag = "agents", responses(
    (status = 200, description = "Every preset", body = [Preset])))]
#[get("/api/presets")]
pub async fn presets(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(all_presets(&state).await?))
}

/// Every preset, found on the PATH the server's children get (the file system is
/// looked at off the async workers).
pub(super) async fn all_presets(state: &web::Data<AppState>) -> Result<Vec<Preset>, AppError> {
    let state = state.clone();
    web::block(move || {
        let path = state.shared.base_env.get("PATH").map(std::ffi::OsString::from);
        state.shared.hooks.presets(path.as_deref())
    })
    .await
    .map_err(AppError::internal)
}

/// A report from an instance's program (its hook or notify program): `claude`,
/// `codex` or `aider`. The answer is what the hook prints back to the program.
#[utoipa::path(operation_id = "report_from_agent", tag = "agents", params(("id" = Uuid, Path), ("kind" = String, Path)),
    request_body(content = Object, description = "The hook's or notify program's JSON, as the agent gave it"), responses(
    (status = 200, description = "The hook's answer (a permission decision, or {})", body = Object),
    (status = 404, description = "No such instance or integration", body = ErrorBody),
    (status = 409, description = "The instance is not running", body = ErrorBody),
    (status = 422, description = "Not JSON", body = ErrorBody)))]
#[post("/api/instances/{id}/hooks/{kind}")]
pub async fn report(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (id, kind) = path.into_inner();
    let id = instance_id(&id)?;
    if body.len() > MAX_REPORT_BYTES {
        return Err(AppError::invalid("body", format!("at most {MAX_REPORT_BYTES} bytes")));
    }
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| AppError::invalid("body", format!("not JSON: {e}")))?
    };
    let actions = match kind.as_str() {
        "claude" => claude::interpret(&payload),
        "codex" => codex::interpret(&payload),
        "aider" => vec![Action::Waiting { reason: "hook: aider notification".into(), prompt: None, message: None }],
        other => {
            return Err(AppError::NotFound(format!("no integration named {other:?}; expected claude, codex or aider")))
        }
    };
    let event = payload.get("hook_event_name").or_else(|| payload.get("type")).and_then(Value::as_str).unwrap_or("");
    tracing::debug!(instance = %id, %kind, event, ?actions, "report from the agent");
    let instance = load(&state, id).await?;
    let addr = running(&state, id).await?;
    let mut answer = json!({});
    for action in actions {
        match action {
            Action::Session(session) => {
                blocking(&state.db.agents, move |conn| Ok(instances::set_agent_session(conn, id, &session)?)).await?;
            }
            Action::Working { reason } => {
                if instance.approval.is_some() {
                    approvals::withdraw_pending(&state, id).await?;
                }
                let _ = addr.send(Hooked::Working { reason }).await;
            }
            Action::Waiting { reason, prompt, message } => {
                // The request held for a decision says it better; a reminder that it
                // still waits says less than what it said when it began waiting.
                let reminder = reason.ends_with("permission_prompt") && instance.approval.is_some()
                    || reason.ends_with("idle_prompt") && instance.status == InstanceStatus::AwaitingInput;
                if reminder {
                    continue;
                }
                if let Some((content, options)) = message {
                    record(&state, &instance, content, options).await?;
                }
                // An `AskUserQuestion`'s choices are picked in the agent's own menu, not
                // typed: they are shown with its message, not offered as typed answers.
                let _ = addr.send(Hooked::Waiting { reason, prompt, options: Vec::new(), now: false }).await;
            }
            Action::Permission { tool_name, tool_input } => {
                match approvals::request(&state, &instance, &addr, tool_name, tool_input).await? {
                    approvals::Answer::Now(decided) => answer = decided,
                    approvals::Answer::Held(held) => {
                        return Ok(HttpResponse::Ok()
                            .content_type("application/json")
                            .streaming(approvals::HeldBody::new(held)));
                    }
                }
            }
        }
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// Records what the agent said as its message (it waits for an answer).
async fn record(state: &AppState, instance: &Instance, content: String, options: Vec<String>) -> Result<(), AppError> {
    let content: String = content.chars().take(crate::domain::message::MAX_CONTENT_BYTES / 4).collect();
    let message = Message {
        id: Uuid::new_v4(),
        agent_instance_id: instance.id,
        sender_type: Sender::Agent,
        content,
        requires_user_input: true,
        options: options.into_iter().take(20).collect(),
        created_at: now(),
        delivered_at: None,
    };
    let agent_id = instance.agent_id;
    blocking(&state.db.agents, move |conn| Ok(messages::insert(conn, &message, agent_id)?)).await?;
    let _ = state.shared.message_wake.send(instance.id);
    Ok(())
}

/// Continue an ended instance's conversation in a new instance of the same agent,
/// in the same workspace (its worktree moves to the new instance).
#[utoipa::path(operation_id = "resume_instance", tag = "instances", params(("id" = Uuid, Path)), responses(
    (status = 201, description = "The new instance (resumed_from names this one)", body = Instance),
    (status = 404, description = "No such instance", body = ErrorBody),
    (status = 409, description = "Still running, or its agent cannot resume (the reason says why)", body = ErrorBody)))]
#[post("/api/instances/{id}/resume")]
pub async fn resume(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let instance = load(&state, id).await?;
    if !is_final(instance.status) {
        return Err(AppError::Conflict {
            code: "still_running",
            message: format!("the instance is {}; only an ended instance can be resumed", instance.status.as_str()),
        });
    }
    let agent_id = instance.agent_id;
    let agent = blocking(&state.db.agents, move |conn| {
        agents::get(conn, agent_id)?.ok_or_else(|| AppError::NotFound(format!("agent {agent_id} not found")))
    })
    .await?;
    if let Some(why) = cannot_resume(agent.settings.integration, &instance) {
        return Err(AppError::Conflict { code: "cannot_resume", message: why });
    }
    let resume = Resume {
        from: instance.id,
        session: instance.agent_session_id.clone().unwrap_or_default(),
        workspace: instance.workspace.clone(),
    };
    let request = NewInstanceRequest { cols: Some(instance.cols), rows: Some(instance.rows), ..Default::default() };
    Ok(HttpResponse::Created().json(start(&state, agent, request, None, Some(resume)).await?))
}
