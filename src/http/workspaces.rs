//! Workspaces over HTTP: an instance's changes, the rule that deleting never
//! loses work without being told to, and worktrees no instance owns any more.

use std::path::{Path, PathBuf};

use actix_web::{delete, get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::instances::{instance_id, load};
use super::{blocking, AppState};
use uuid::Uuid;

use crate::db::instances as store;
use crate::domain::instance::{Instance, Workspace};
use crate::error::{AppError, ErrorBody, LostWork};
use crate::workspace::{self, Changes, WorkspaceError};

/// Options of `GET /api/instances/:id/changes`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// `json` (the default) or `patch` (the unified diff as text/plain).
    pub format: Option<String>,
}

/// Options of deletions that may lose work.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiscardQuery {
    /// Delete worktrees even when they hold uncommitted files or unmerged commits.
    pub discard: Option<bool>,
}

/// Runs git off the async workers.
pub(super) async fn git<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    actix_web::rt::task::spawn_blocking(work).await.map_err(AppError::internal)
}

fn made(instance: &Instance) -> Option<Workspace> {
    instance.workspace.clone().filter(|ws| ws.base_commit.is_some())
}

/// Everything the instance changed relative to where its branch started: its
/// commits, uncommitted edits and untracked files.
#[utoipa::path(operation_id = "instance_changes", tag = "instances", params(("id" = Uuid, Path), ChangesQuery), responses(
    (status = 200, description = "The changes (or, with format=patch, the unified diff as text/plain)", body = Changes),
    (status = 404, description = "No such instance", body = ErrorBody),
    (status = 409, description = "The instance has no worktree (yet), or it was removed", body = ErrorBody),
    (status = 422, description = "Unknown format", body = ErrorBody)))]
#[get("/api/instances/{id}/changes")]
pub async fn changes(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<ChangesQuery>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let patch = match query.format.as_deref() {
        None | Some("json") => false,
        Some("patch") => true,
        Some(_) => return Err(AppError::invalid("format", "must be json or patch")),
    };
    let instance = load(&state, id).await?;
    let Some(ws) = made(&instance) else {
        let message = if instance.workspace.is_some() {
            "the instance's worktree is made when it starts; it has not started yet"
        } else {
            "the instance runs in its agent's project_path (settings.workspace is \"shared\"): it has no worktree"
        };
        return Err(AppError::Conflict { code: "no_workspace", message: message.to_owned() });
    };
    let changes = git(move || workspace::changes(&ws)).await?.map_err(|e| match e {
        WorkspaceError::Git(message) if message.contains("no longer exists") => {
            AppError::Conflict { code: "no_workspace", message }
        }
        other => AppError::internal(other),
    })?;
    if patch {
        let mut response = HttpResponse::Ok();
        response.content_type("text/plain; charset=utf-8");
        if changes.truncated {
            response.insert_header(("X-Switchboard-Truncated", "true"));
        }
        return Ok(response.body(changes.diff));
    }
    Ok(HttpResponse::Ok().json(changes))
}

/// What deleting these instances' worktrees would lose (empty: nothing).
pub(super) async fn unsaved(instances: Vec<Instance>) -> Result<Vec<LostWork>, AppError> {
    git(move || {
        let mut lost = Vec::new();
        for instance in instances {
            let Some(ws) = made(&instance) else { continue };
            let items = workspace::unsaved(&ws)?;
            if !items.is_empty() {
                lost.push(LostWork { instance_id: instance.id, branch: ws.branch.clone(), items });
            }
        }
        Ok::<_, WorkspaceError>(lost)
    })
    .await?
    .map_err(AppError::internal)
}

/// Refuses (409 `workspace_dirty`) unless nothing would be lost or `discard` is set.
pub(super) async fn refuse_if_dirty(instances: Vec<Instance>, discard: bool) -> Result<(), AppError> {
    if discard {
        return Ok(());
    }
    let lost = unsaved(instances).await?;
    if lost.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> =
        lost.iter().flat_map(|l| l.items.iter().map(move |i| format!("{}: {i}", l.branch))).collect();
    Err(AppError::WorkspaceDirty {
        message: format!(
            "deleting would lose work ({}); commit or merge it, or delete with ?discard=true",
            listed.join("; ")
        ),
        lost,
    })
}

/// Removes these instances' worktrees and branches.
pub(super) async fn remove(instances: Vec<Instance>) -> Result<(), AppError> {
    git(move || {
        for ws in instances.iter().filter_map(|i| i.workspace.clone()) {
            if ws.base_commit.is_some() || Path::new(&ws.path).exists() {
                workspace::remove(&ws)?;
            }
        }
        Ok::<_, WorkspaceError>(())
    })
    .await?
    .map_err(AppError::internal)
}

/// A worktree directory no instance owns.
#[derive(Debug, Serialize, ToSchema)]
pub struct Orphan {
    /// Its directory's name (the id of the instance it was made for).
    pub name: String,
    pub path: String,
    /// The repository it belongs to, when git still knows it.
    pub repository: Option<String>,
    /// Its branch, when it has one.
    pub branch: Option<String>,
}

/// What owns worktree directories: instances (by id) and agents (their spares).
#[derive(Default)]
struct Owners {
    instances: std::collections::HashSet<String>,
    agents: std::collections::HashSet<String>,
}

fn subdirectories(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect()
}

/// Orphans as (name, path): an instance's directory whose instance is gone, and
/// an agent's spare (`spare-<agent-id>`) whose agent is gone.
fn orphan_paths(root: &Path, owners: &Owners) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = subdirectories(root)
        .into_iter()
        .filter(|(name, _)| !name.starts_with('.') && !owners.instances.contains(name))
        .collect();
    found.extend(
        subdirectories(&root.join(".spare"))
            .into_iter()
            .filter(|(name, _)| !name.starts_with('.') && !owners.agents.contains(name))
            .map(|(name, path)| (format!("spare-{name}"), path)),
    );
    found.sort();
    found
}

fn describe(name: String, path: &Path) -> Orphan {
    let repository = workspace::repository_of(path);
    let branch = workspace::branch_of(path);
    Orphan { name, path: path.display().to_string(), repository, branch }
}

async fn owned(state: &AppState) -> Result<Owners, AppError> {
    blocking(&state.db.agents, |conn| {
        let instances = store::workspaces(conn)?.into_iter().map(|(id, _)| id.to_string()).collect();
        let agents = crate::db::agents::ids(conn)?.into_iter().map(|id| id.to_string()).collect();
        Ok(Owners { instances, agents })
    })
    .await
}

/// Worktree directories under `worktrees_dir` whose instance no longer exists.
#[utoipa::path(operation_id = "workspace_orphans", tag = "instances", responses(
    (status = 200, description = "Orphaned worktrees", body = [Orphan])))]
#[get("/api/workspaces/orphans")]
pub async fn orphans(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let owned = owned(&state).await?;
    let root = state.shared.worktrees.clone();
    let found =
        git(move || orphan_paths(&root, &owned).into_iter().map(|(name, p)| describe(name, &p)).collect::<Vec<_>>())
            .await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Removes an orphaned worktree's directory (its branch, if any, is kept: no commit is lost).
#[utoipa::path(operation_id = "delete_workspace_orphan", tag = "instances", params(("name" = String, Path)), responses(
    (status = 204, description = "Removed"),
    (status = 404, description = "No such orphan", body = ErrorBody)))]
#[delete("/api/workspaces/orphans/{name}")]
pub async fn delete_orphan(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let name = name.into_inner();
    let owned = owned(&state).await?;
    let root = state.shared.worktrees.clone();
    let gone = AppError::NotFound(format!("no orphaned worktree named {name:?}"));
    let removed = git(move || {
        let Some((_, path)) = orphan_paths(&root, &owned).into_iter().find(|(n, _)| *n == name) else {
            return Ok(false);
        };
        workspace::remove_directory(&path).map(|()| true)
    })
    .await?
    .map_err(AppError::internal)?;
    if removed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(gone)
    }
}

/// Makes the agent's spare worktree in the background (a worktree agent), or
/// removes it (any other, or a deleted one), so its next instance starts without
/// a full checkout.
pub(super) fn keep_spare(shared: &crate::actors::Shared, agent: Uuid, project_path: &str, wanted: bool) {
    let spare = workspace::spare_path(&shared.worktrees, agent);
    let repository = PathBuf::from(project_path);
    actix_web::rt::task::spawn_blocking(move || workspace::keep_spare(&spare, &repository, wanted));
}

/// `git worktree prune` in every repository with instance worktrees (at start-up).
pub fn prune_all(shared: &crate::actors::Shared) {
    let Ok(conn) = shared.db.agents.get() else { return };
    let Ok(all) = store::workspaces(&conn) else { return };
    drop(conn);
    let mut repositories: Vec<String> = all.into_iter().map(|(_, ws)| ws.repository).collect();
    repositories.sort();
    repositories.dedup();
    for repository in repositories {
        if Path::new(&repository).is_dir() {
            workspace::prune(Path::new(&repository));
        }
    }
}
