//! `/api/agents`: agents and their settings in `agents.db`.

use actix_web::{delete, get, post, put, web, HttpResponse};
use uuid::Uuid;

use super::json::{Json, PageQuery};
use super::workspaces::{self, DiscardQuery};
use super::{blocking, AppState};
use crate::actors::registry::{KeepAgent, TerminateAgent};
use crate::db::{agents as store, instances};
use crate::domain::agent::{Agent, AgentPatch, NewAgent};
use crate::domain::instance::Instance;
use crate::domain::settings::WorkspaceKind;
use crate::error::{AppError, ErrorBody};

fn agent_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| not_found(raw))
}

fn not_found(id: impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!("agent {id} not found"))
}

/// A `worktree` agent needs a git repository with a commit as its project (git
/// runs off the async workers, with no database connection held).
async fn check_repository(project_path: &str, kind: WorkspaceKind) -> Result<(), AppError> {
    if kind != WorkspaceKind::Worktree {
        return Ok(());
    }
    let path = std::path::PathBuf::from(project_path);
    match workspaces::git(move || crate::workspace::resolve(&path, None)).await? {
        Ok(_) => Ok(()),
        Err(e @ crate::workspace::WorkspaceError::Git(_)) => Err(AppError::internal(e)),
        Err(e) => Err(AppError::invalid("settings.workspace", format!("\"worktree\" needs a git repository: {e}"))),
    }
}

/// A sandbox must be able to hide the data directory: refuses a shared workspace or a
/// writable path that holds it (Landlock cannot take rights away beneath a grant).
fn check_sandbox(
    state: &AppState,
    project_path: &str,
    kind: WorkspaceKind,
    sandbox: &crate::domain::settings::Sandbox,
) -> Result<(), AppError> {
    use crate::isolation::sandbox::exposing;
    if !sandbox.enabled {
        return Ok(());
    }
    let data = state.shared.data_dir.as_path();
    let held = |field: String, path: &str| {
        AppError::invalid(
            field,
            format!(
                "the server's data directory {} lies inside {path}, so a sandbox cannot hide it from the \
                 instances; use \"workspace\": \"worktree\" or a narrower path, or move the data directory",
                data.display()
            ),
        )
    };
    if kind == WorkspaceKind::Shared && exposing(data, [std::path::Path::new(project_path)]).is_some() {
        return Err(held("settings.sandbox.enabled".into(), project_path));
    }
    for (i, path) in sandbox.writable.iter().enumerate() {
        if path.starts_with('/') && exposing(data, [std::path::Path::new(path)]).is_some() {
            return Err(held(format!("settings.sandbox.writable[{i}]"), path));
        }
    }
    Ok(())
}

/// The agent's spare worktree follows its settings, in the background.
fn keep_spare(state: &AppState, agent: &store::StoredAgent) {
    let wanted = agent.settings.workspace == WorkspaceKind::Worktree;
    workspaces::keep_spare(&state.shared, agent.id, &agent.record.project_path, wanted);
}

/// List agents, newest first.
#[utoipa::path(operation_id = "list_agents", tag = "agents", params(PageQuery), responses(
    (status = 200, description = "Agents, newest first", body = [Agent])))]
#[get("/api/agents")]
pub async fn list(state: web::Data<AppState>, query: web::Query<PageQuery>) -> Result<HttpResponse, AppError> {
    let page = query.page()?;
    let agents = blocking(&state.db.agents, move |conn| {
        Ok(store::list(conn, page)?.iter().map(store::StoredAgent::public).collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(agents))
}

/// Create an agent (settings may be given inline).
#[utoipa::path(operation_id = "create_agent", tag = "agents", request_body = NewAgent, responses(
    (status = 201, description = "Created", body = Agent),
    (status = 409, description = "The name is taken", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[post("/api/agents")]
pub async fn create(state: web::Data<AppState>, body: Json<NewAgent>) -> Result<HttpResponse, AppError> {
    let mut body = body.0;
    if let Some(name) = body.preset.take() {
        let presets = super::integrations::all_presets(&state).await?;
        from_preset(&presets, &name, &mut body)?;
    }
    let (record, settings) = body.validate()?;
    check_sandbox(&state, &record.project_path, settings.workspace, &settings.sandbox)?;
    check_repository(&record.project_path, settings.workspace).await?;
    let agent = blocking(&state.db.agents, move |conn| Ok(store::insert(conn, &record, &settings)?)).await?;
    keep_spare(&state, &agent);
    let agent = agent.public();
    Ok(HttpResponse::Created().json(agent))
}

/// Fills in what a preset gives and the request does not: its command and integration.
fn from_preset(
    presets: &[crate::domain::integration::Preset],
    name: &str,
    body: &mut NewAgent,
) -> Result<(), AppError> {
    let Some(preset) = presets.iter().find(|p| p.name == name) else {
        let names: Vec<&str> = presets.iter().map(|p| p.name).collect();
        return Err(AppError::invalid(
            "preset",
            format!("unknown preset {name:?}; expected one of {}", names.join(", ")),
        ));
    };
    if body.command.is_none() {
        if let Some(why) = &preset.unavailable_reason {
            return Err(AppError::invalid("preset", format!("{name} is unavailable: {why}")));
        }
        body.command = Some(serde_json::json!(preset.command));
    }
    let settings = body.settings.get_or_insert_with(Default::default);
    settings.integration.get_or_insert(preset.integration);
    Ok(())
}

/// One agent.
#[utoipa::path(operation_id = "get_agent", tag = "agents", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The agent", body = Agent),
    (status = 404, description = "No such agent", body = ErrorBody)))]
#[get("/api/agents/{id}")]
pub async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = agent_id(&id)?;
    let agent = blocking(&state.db.agents, move |conn| store::get(conn, id)?.ok_or_else(|| not_found(id))).await?;
    Ok(HttpResponse::Ok().json(agent.public()))
}

/// Change some fields of an agent; given settings keys are merged into the stored ones.
#[utoipa::path(operation_id = "update_agent", tag = "agents", params(("id" = Uuid, Path)), request_body = AgentPatch, responses(
    (status = 200, description = "The changed agent", body = Agent),
    (status = 404, description = "No such agent", body = ErrorBody),
    (status = 409, description = "The name is taken", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[put("/api/agents/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<AgentPatch>,
) -> Result<HttpResponse, AppError> {
    let id = agent_id(&id)?;
    let change = body.0.validate()?;
    let current = blocking(&state.db.agents, move |conn| store::get(conn, id)?.ok_or_else(|| not_found(id))).await?;
    let path = change.project_path.as_deref().unwrap_or(&current.record.project_path);
    let kind = change.settings.as_ref().and_then(|s| s.workspace).unwrap_or(current.settings.workspace);
    let sandbox = change.settings.as_ref().and_then(|s| s.sandbox.as_ref()).unwrap_or(&current.settings.sandbox);
    check_sandbox(&state, path, kind, sandbox)?;
    check_repository(path, kind).await?;
    let updated = blocking(&state.db.agents, move |conn| store::update(conn, id, change)?.ok_or_else(|| not_found(id)));
    let updated = updated.await;
    state.db.known_agents.forget(id);
    let agent = updated?;
    keep_spare(&state, &agent);
    Ok(HttpResponse::Ok().json(agent.public()))
}

/// Delete an agent; its running instances are terminated first, then its
/// instances and messages go with it, and their worktrees and branches when
/// nothing would be lost (or `discard=true`).
#[utoipa::path(operation_id = "delete_agent", tag = "agents", params(("id" = Uuid, Path), DiscardQuery), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such agent", body = ErrorBody),
    (status = 409, description = "workspace_dirty: worktrees of its instances hold work that would be lost", body = ErrorBody)))]
#[delete("/api/agents/{id}")]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DiscardQuery>,
) -> Result<HttpResponse, AppError> {
    let id = agent_id(&id)?;
    let discard = query.discard.unwrap_or(false);
    let with_worktrees = move |conn: &mut rusqlite::Connection| -> Result<_, AppError> {
        store::get(conn, id)?.ok_or_else(|| not_found(id))?;
        let all = instances::list_of_agent(conn, id)?;
        Ok(all.into_iter().filter(|i| i.workspace.is_some()).collect::<Vec<_>>())
    };
    let before = blocking(&state.db.agents, with_worktrees).await?;
    workspaces::refuse_if_dirty(before, discard).await?;
    state.registry.send(TerminateAgent(id)).await.map_err(AppError::internal)?;
    // Checked again once they ended; refused now, the agent is kept (its instances stay ended).
    let ended = match blocking(&state.db.agents, with_worktrees).await {
        Ok(ended) => ended,
        Err(e) => {
            state.registry.do_send(KeepAgent(id));
            return Err(e);
        }
    };
    if let Err(e) = workspaces::refuse_if_dirty(ended.clone(), discard).await {
        state.registry.do_send(KeepAgent(id));
        return Err(e);
    }
    if let Err(e) = workspaces::remove(ended).await {
        state.registry.do_send(KeepAgent(id));
        return Err(e);
    }
    let shared = state.shared.clone();
    let deleted = blocking(&state.db.agents, move |conn| {
        let instances = instances::ids_of_agent(conn, id)?;
        if !store::delete(conn, id)? {
            return Err(not_found(id));
        }
        for instance in instances {
            if let Err(e) = shared.remove_files(instance) {
                tracing::warn!(%instance, error = %e, "cannot remove an instance's files");
            }
        }
        Ok(())
    })
    .await;
    state.db.known_agents.forget(id);
    if deleted.is_err() {
        state.registry.do_send(KeepAgent(id));
    }
    deleted?;
    let spare = crate::workspace::spare_path(&state.shared.worktrees, id);
    let removed =
        workspaces::git(move || if spare.exists() { crate::workspace::remove_directory(&spare) } else { Ok(()) })
            .await?;
    if let Err(e) = removed {
        tracing::warn!(agent = %id, error = %e, "cannot remove the agent's spare worktree");
    }
    Ok(HttpResponse::NoContent().finish())
}

/// An agent's instances, newest first.
#[utoipa::path(operation_id = "list_agent_instances", tag = "agents", params(("id" = Uuid, Path), PageQuery), responses(
    (status = 200, description = "Instances, newest first", body = [Instance]),
    (status = 404, description = "No such agent", body = ErrorBody)))]
#[get("/api/agents/{id}/instances")]
pub async fn list_instances(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let id = agent_id(&id)?;
    let page = query.page()?;
    let rows = blocking(&state.db.agents, move |conn| {
        store::get(conn, id)?.ok_or_else(|| not_found(id))?;
        Ok(instances::list(conn, instances::Filter { agent_id: Some(id), status: None }, page)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}
