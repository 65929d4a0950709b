//! `/api/instances` and `/api/agents/:id/instances`: starting, listing,
//! ending and deleting instances, and typing into them.

use std::collections::BTreeMap;

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::json::{page, uuid_param, Json};
use super::workspaces::{self, DiscardQuery};
use super::{blocking, AppState};
use crate::actors::instance::{Ending, Input, InstanceActor, Resize};
use crate::actors::registry::{Create, QueuePositions, Terminate};
use crate::db::agents::StoredAgent;
use crate::db::{instances as store, tasks};
use crate::domain::agent::validate_env;
use crate::domain::input::InputRequest;
use crate::domain::instance::EndReason;
use crate::domain::instance::{Instance, InstanceStatus, DEFAULT_COLS, DEFAULT_ROWS};
use crate::domain::message::MAX_CONTENT_BYTES;
use crate::domain::settings::WorkspaceKind;
use crate::domain::state::is_final;
use crate::error::{AppError, ErrorBody};

/// Body of `POST /api/agents/:id/instances`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstanceRequest {
    /// Typed (then Enter) once the program waits for input.
    pub prompt: Option<String>,
    /// 1–1000, default 120.
    pub cols: Option<u16>,
    /// 1–1000, default 40.
    pub rows: Option<u16>,
    /// A task this instance works on.
    pub task_id: Option<i64>,
    /// Extra environment variables for this instance only.
    pub env: Option<BTreeMap<String, String>>,
    /// Queue when no slot is free (default true); false answers 429 instead.
    pub queue: Option<bool>,
    /// For agents whose `workspace` is `worktree`: the ref the instance's branch
    /// starts from (a branch, tag or commit; default the project's `HEAD`).
    pub base: Option<String>,
}

/// Body of `PUT /api/instances/:id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceUpdate {
    /// Only `terminated` may be requested.
    pub status: String,
}

/// Body of `POST /api/instances/:id/resize`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeRequest {
    pub cols: u16,
    pub rows: u16,
}

/// Filters of `GET /api/instances`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    #[param(value_type = Option<InstanceStatus>)]
    pub status: Option<String>,
    #[param(value_type = Option<Uuid>)]
    pub agent_id: Option<String>,
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    #[param(value_type = Option<u32>)]
    pub offset: Option<String>,
}

/// Parses an instance id from the path (anything else is unknown).
pub(super) fn instance_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| not_found(raw))
}

pub(super) fn not_found(id: impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!("instance {id} not found"))
}

fn size(value: Option<u16>, default: u16, field: &str) -> Result<u16, AppError> {
    let n = value.unwrap_or(default);
    if (1..=1000).contains(&n) {
        Ok(n)
    } else {
        Err(AppError::invalid(field, "must be from 1 to 1000"))
    }
}

/// Loads an instance, with its queue position.
pub(super) async fn load(state: &AppState, id: Uuid) -> Result<Instance, AppError> {
    let instance = blocking(&state.db.agents, move |conn| store::get(conn, id)?.ok_or_else(|| not_found(id))).await?;
    let mut one = [instance];
    with_positions(state, &mut one).await?;
    let [instance] = one;
    Ok(instance)
}

/// Fills in the queue positions of queued (`idle`) instances, and what running
/// ones use now.
async fn with_positions(state: &AppState, instances: &mut [Instance]) -> Result<(), AppError> {
    if instances.iter().any(|i| i.status == InstanceStatus::Idle) {
        let positions = state.registry.send(QueuePositions).await.map_err(AppError::internal)?;
        for instance in instances.iter_mut() {
            instance.queue_position = positions.get(&instance.id).copied();
        }
    }
    let live: Vec<Uuid> = instances.iter().filter(|i| !is_final(i.status) && i.pid.is_some()).map(|i| i.id).collect();
    if !live.is_empty() {
        let shared = state.shared.clone();
        let usage = web::block(move || live.into_iter().map(|id| (id, shared.running.usage(id))).collect::<Vec<_>>())
            .await
            .map_err(AppError::internal)?;
        for (id, usage) in usage {
            if let Some(instance) = instances.iter_mut().find(|i| i.id == id) {
                instance.usage = usage.or(instance.usage);
            }
        }
    }
    Ok(())
}

/// The actor of a running instance: 404 if unknown, 409 if queued or ended.
pub(super) async fn running(state: &AppState, id: Uuid) -> Result<actix::Addr<InstanceActor>, AppError> {
    if let Some(addr) = state.shared.directory.get(id) {
        return Ok(addr);
    }
    let instance = load(state, id).await?;
    Err(AppError::not_running(instance.status.as_str()))
}

/// Start an instance of the agent (queued when no slot is free).
#[utoipa::path(operation_id = "create_instance", tag = "instances", params(("id" = Uuid, Path)), request_body = NewInstanceRequest, responses(
    (status = 201, description = "Created (running, queued, or failed to start)", body = Instance),
    (status = 404, description = "No such agent", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody),
    (status = 429, description = "No free slot and queue was false", body = ErrorBody)))]
#[post("/api/agents/{id}/instances")]
pub async fn create(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<NewInstanceRequest>,
) -> Result<HttpResponse, AppError> {
    let agent_id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound(format!("agent {id} not found")))?;
    let agent = state.db.known_agents.read(&state.db.agents, agent_id).await?;
    let agent = agent.ok_or_else(|| AppError::NotFound(format!("agent {agent_id} not found")))?;
    Ok(HttpResponse::Created().json(start(&state, agent, body.0, None, None).await?))
}

/// Validates a request and asks the registry for the instance.
pub(super) async fn start(
    state: &AppState,
    agent: StoredAgent,
    req: NewInstanceRequest,
    receipt: Option<String>,
    resume: Option<crate::actors::registry::Resume>,
) -> Result<Instance, AppError> {
    let (cols, rows) = (size(req.cols, DEFAULT_COLS, "cols")?, size(req.rows, DEFAULT_ROWS, "rows")?);
    let env = req.env.unwrap_or_default();
    validate_env(&env)?;
    if let Some(prompt) = &req.prompt {
        if prompt.len() > MAX_CONTENT_BYTES || prompt.contains('\0') {
            return Err(AppError::invalid("prompt", format!("must be at most {MAX_CONTENT_BYTES} bytes without NUL")));
        }
    }
    let base = check_workspace(&agent, req.base).await?;
    if let Some(task_id) = req.task_id {
        blocking(&state.db.tasks, move |conn| {
            tasks::get(conn, task_id)?
                .ok_or_else(|| AppError::invalid("task_id", format!("task {task_id} does not exist")))
        })
        .await?;
    }
    let request = Create {
        agent,
        prompt: req.prompt,
        cols,
        rows,
        task_id: req.task_id,
        env,
        queue: req.queue.unwrap_or(true),
        receipt,
        base,
        resume,
    };
    Ok(state.registry.send(request).await.map_err(AppError::internal)??)
}

/// Checks that a `worktree` agent's repository and base can make a worktree (so a
/// queued instance is refused now, not when it starts); returns the base.
async fn check_workspace(agent: &StoredAgent, base: Option<String>) -> Result<Option<String>, AppError> {
    if let Some(base) = &base {
        let bad = base.is_empty()
            || base.len() > 255
            || base.starts_with('-')
            || base.chars().any(|c| c.is_control() || c.is_whitespace());
        if bad {
            return Err(AppError::invalid("base", "must be a branch, tag or commit name (no spaces, no leading -)"));
        }
    }
    if agent.settings.workspace != WorkspaceKind::Worktree {
        if base.is_some() {
            return Err(AppError::invalid("base", "applies only to agents whose settings.workspace is \"worktree\""));
        }
        return Ok(None);
    }
    let (project, asked) = (agent.record.project_path.clone(), base.clone());
    let resolved =
        workspaces::git(move || crate::workspace::resolve(std::path::Path::new(&project), asked.as_deref())).await?;
    match resolved {
        Ok(_) => Ok(base),
        Err(e @ crate::workspace::WorkspaceError::UnknownBase(_)) => Err(AppError::invalid("base", e.to_string())),
        Err(e @ crate::workspace::WorkspaceError::Git(_)) => Err(AppError::internal(e)),
        Err(e) => Err(AppError::invalid("project_path", format!("settings.workspace is \"worktree\": {e}"))),
    }
}

/// List instances, newest first.
#[utoipa::path(operation_id = "list_instances", tag = "instances", params(InstanceQuery), responses(
    (status = 200, description = "Instances, newest first", body = [Instance])))]
#[get("/api/instances")]
pub async fn list(state: web::Data<AppState>, query: web::Query<InstanceQuery>) -> Result<HttpResponse, AppError> {
    let filter = store::Filter {
        status: query.status.as_deref().map(InstanceStatus::parse).transpose()?,
        agent_id: uuid_param(query.agent_id.as_deref(), "agent_id")?,
    };
    let page = page(query.limit.as_deref(), query.offset.as_deref())?;
    let mut list = blocking(&state.db.agents, move |conn| Ok(store::list(conn, filter, page)?)).await?;
    with_positions(&state, &mut list).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One instance.
#[utoipa::path(operation_id = "get_instance", tag = "instances", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The instance", body = Instance),
    (status = 404, description = "No such instance", body = ErrorBody)))]
#[get("/api/instances/{id}")]
pub async fn show(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(load(&state, instance_id(&id)?).await?))
}

/// Terminate an instance: answers once its whole process group is gone.
#[utoipa::path(operation_id = "terminate_instance", tag = "instances", params(("id" = Uuid, Path)), request_body = InstanceUpdate, responses(
    (status = 200, description = "Terminated", body = Instance),
    (status = 409, description = "Already ended", body = ErrorBody),
    (status = 422, description = "Only terminated may be requested", body = ErrorBody)))]
#[put("/api/instances/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<InstanceUpdate>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    if body.0.status != "terminated" {
        return Err(AppError::invalid("status", "only \"terminated\" may be requested"));
    }
    // A running instance is ended through its actor at once; only a queued one (or
    // one that ended meanwhile) needs the stored record and the registry.
    if let Some(ended) = state.shared.directory.end(id, Ending::Terminate(EndReason::User)) {
        ended.await;
    } else {
        let instance = load(&state, id).await?;
        if is_final(instance.status) {
            return Err(AppError::Conflict {
                code: "illegal_transition",
                message: format!("the instance already ended ({})", instance.status.as_str()),
            });
        }
        state
            .registry
            .send(Terminate { id, how: Ending::Terminate(EndReason::User) })
            .await
            .map_err(AppError::internal)?;
    }
    Ok(HttpResponse::Ok().json(load(&state, id).await?))
}

/// Delete an instance (terminated first if it runs), its messages and its files,
/// and its worktree and branch when nothing would be lost (or `discard=true`).
#[utoipa::path(operation_id = "delete_instance", tag = "instances", params(("id" = Uuid, Path), DiscardQuery), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such instance", body = ErrorBody),
    (status = 409, description = "workspace_dirty: its worktree holds uncommitted files or commits no other branch has", body = ErrorBody)))]
#[delete("/api/instances/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DiscardQuery>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let discard = query.discard.unwrap_or(false);
    let before = load(&state, id).await?;
    workspaces::refuse_if_dirty(vec![before], discard).await?;
    if let Some(ended) = state.shared.directory.end(id, Ending::Terminate(EndReason::Deleted)) {
        ended.await;
    } else {
        let instance = load(&state, id).await?;
        if !is_final(instance.status) {
            state
                .registry
                .send(Terminate { id, how: Ending::Terminate(EndReason::Deleted) })
                .await
                .map_err(AppError::internal)?;
        }
    }
    // Checked again once it ended: it may have written more meanwhile.
    let ended = load(&state, id).await?;
    workspaces::refuse_if_dirty(vec![ended.clone()], discard).await?;
    workspaces::remove(vec![ended]).await?;
    let shared = state.shared.clone();
    blocking(&state.db.agents, move |conn| {
        store::delete(conn, id)?;
        shared.remove_files(id).map_err(AppError::internal)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Type into the terminal: raw `data`, or named `keys`.
#[utoipa::path(operation_id = "instance_input", tag = "instances", params(("id" = Uuid, Path)), request_body = InputRequest, responses(
    (status = 202, description = "Queued for the terminal"),
    (status = 409, description = "Not running", body = ErrorBody),
    (status = 422, description = "Unknown key", body = ErrorBody),
    (status = 429, description = "The program is not reading its input", body = ErrorBody)))]
#[post("/api/instances/{id}/input")]
pub async fn input(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<InputRequest>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let bytes = body.0.bytes()?;
    let addr = running(&state, id).await?;
    addr.send(Input(bytes)).await.map_err(|_| AppError::not_running("ending"))??;
    Ok(HttpResponse::Accepted().finish())
}

/// Resize the terminal.
#[utoipa::path(operation_id = "instance_resize", tag = "instances", params(("id" = Uuid, Path)), request_body = ResizeRequest, responses(
    (status = 204, description = "Resized, and the new size stored"),
    (status = 409, description = "Ended", body = ErrorBody),
    (status = 422, description = "Out of range", body = ErrorBody)))]
#[post("/api/instances/{id}/resize")]
pub async fn resize(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<ResizeRequest>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let (cols, rows) = (size(Some(body.0.cols), 0, "cols")?, size(Some(body.0.rows), 0, "rows")?);
    if let Some(addr) = state.shared.directory.get(id) {
        let stored = addr.send(Resize { cols, rows }).await.map_err(|_| AppError::not_running("ending"))??;
        // Answered once the size is stored, so what is read next shows it. (The
        // instance resized already; a store that failed is logged, not an error here.)
        let _ = stored.await;
        return Ok(HttpResponse::NoContent().finish());
    }
    let instance = load(&state, id).await?;
    if instance.status != InstanceStatus::Idle {
        return Err(AppError::not_running(instance.status.as_str()));
    }
    blocking(&state.db.agents, move |conn| Ok(store::set_size(conn, id, cols, rows)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}
