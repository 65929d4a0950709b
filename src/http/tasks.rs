//! `/api/tasks`: the task list in `tasks.db`.

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::instances::{start, NewInstanceRequest};
use super::json::{page, Json};
use super::{blocking, relay_tasks, AppState};
use crate::db::agents;
use crate::db::tasks::{self as store, Filter};
use crate::domain::instance::Instance;
use crate::domain::task::{NewTask, Priority, Task, TaskPatch, TaskStatus};
use crate::error::{AppError, ErrorBody};

/// Filters and paging of `GET /api/tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// `pending`, `in_progress`, `done` or `failed`.
    #[param(value_type = Option<TaskStatus>)]
    pub status: Option<String>,
    /// `low`, `medium` or `high`.
    #[param(value_type = Option<Priority>)]
    pub priority: Option<String>,
    /// 1–1000, default 100.
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// Rows to skip, default 0.
    #[param(value_type = Option<u32>)]
    pub offset: Option<String>,
}

fn task_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| not_found(raw))
}

fn not_found(id: impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!("task {id} not found"))
}

/// List tasks, newest first.
#[utoipa::path(operation_id = "list_tasks", tag = "tasks", params(TaskQuery), responses(
    (status = 200, description = "Tasks, newest first", body = [Task]),
    (status = 422, description = "Unknown filter value or bad paging", body = ErrorBody)))]
#[get("/api/tasks")]
pub async fn list(state: web::Data<AppState>, query: web::Query<TaskQuery>) -> Result<HttpResponse, AppError> {
    let filter = Filter {
        status: query.status.as_deref().map(TaskStatus::parse).transpose()?,
        priority: query.priority.as_deref().map(Priority::parse).transpose()?,
    };
    let page = page(query.limit.as_deref(), query.offset.as_deref())?;
    let tasks = blocking(&state.db.tasks, move |conn| Ok(store::list(conn, filter, page)?)).await?;
    Ok(HttpResponse::Ok().json(tasks))
}

/// Create a task.
#[utoipa::path(operation_id = "create_task", tag = "tasks", request_body = NewTask, responses(
    (status = 201, description = "Created", body = Task),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[post("/api/tasks")]
pub async fn create(state: web::Data<AppState>, body: Json<NewTask>) -> Result<HttpResponse, AppError> {
    let task = body.0.validate()?;
    let task = blocking(&state.db.tasks, move |conn| Ok(store::insert(conn, &task)?)).await?;
    relay_tasks(&state).await;
    Ok(HttpResponse::Created().json(task))
}

/// One task.
#[utoipa::path(operation_id = "get_task", tag = "tasks", params(("id" = i64, Path)), responses(
    (status = 200, description = "The task", body = Task),
    (status = 404, description = "No such task", body = ErrorBody)))]
#[get("/api/tasks/{id}")]
pub async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = task_id(&id)?;
    let task = blocking(&state.db.tasks, move |conn| store::get(conn, id)?.ok_or_else(|| not_found(id))).await?;
    Ok(HttpResponse::Ok().json(task))
}

/// Change some fields of a task; `updated_at` moves.
#[utoipa::path(operation_id = "update_task", tag = "tasks", params(("id" = i64, Path)), request_body = TaskPatch, responses(
    (status = 200, description = "The changed task", body = Task),
    (status = 404, description = "No such task", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[put("/api/tasks/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<TaskPatch>,
) -> Result<HttpResponse, AppError> {
    let id = task_id(&id)?;
    let patch = body.0.validate()?;
    let task =
        blocking(&state.db.tasks, move |conn| store::update(conn, id, &patch)?.ok_or_else(|| not_found(id))).await?;
    relay_tasks(&state).await;
    Ok(HttpResponse::Ok().json(task))
}

/// Delete a task.
#[utoipa::path(operation_id = "delete_task", tag = "tasks", params(("id" = i64, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such task", body = ErrorBody)))]
#[delete("/api/tasks/{id}")]
pub async fn delete(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = task_id(&id)?;
    blocking(&state.db.tasks, move |conn| if store::delete(conn, id)? { Ok(()) } else { Err(not_found(id)) }).await?;
    relay_tasks(&state).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /api/tasks/:id/run`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The agent that works on the task.
    #[schema(value_type = Uuid)]
    pub agent_id: String,
    pub cols: Option<u16>,
    pub rows: Option<u16>,
}

/// Start an instance of an agent on the task: its title and description are the
/// prompt; the task is `in_progress` while it runs, then `done` or `failed`.
#[utoipa::path(operation_id = "run_task", tag = "tasks", params(("id" = i64, Path)), request_body = RunRequest, responses(
    (status = 201, description = "The instance working on the task", body = Instance),
    (status = 404, description = "No such task", body = ErrorBody),
    (status = 422, description = "No such agent, or an invalid field", body = ErrorBody)))]
#[post("/api/tasks/{id}/run")]
pub async fn run(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<RunRequest>,
) -> Result<HttpResponse, AppError> {
    let id = task_id(&id)?;
    let req = body.0;
    let task = blocking(&state.db.tasks, move |conn| store::get(conn, id)?.ok_or_else(|| not_found(id))).await?;
    let agent_id = Uuid::parse_str(&req.agent_id).map_err(|_| AppError::invalid("agent_id", "must be an agent id"))?;
    let agent = blocking(&state.db.agents, move |conn| {
        agents::get(conn, agent_id)?
            .ok_or_else(|| AppError::invalid("agent_id", format!("agent {agent_id} does not exist")))
    })
    .await?;
    let prompt = if task.description.trim().is_empty() {
        task.title.clone()
    } else {
        format!("{}\n\n{}", task.title, task.description)
    };
    set_status(&state, id, TaskStatus::InProgress).await?;
    let request = NewInstanceRequest {
        prompt: Some(prompt),
        cols: req.cols,
        rows: req.rows,
        task_id: Some(id),
        ..Default::default()
    };
    match start(&state, agent, request, None, None).await {
        Ok(instance) => Ok(HttpResponse::Created().json(instance)),
        Err(e) => {
            set_status(&state, id, task.status).await?;
            Err(e)
        }
    }
}

async fn set_status(state: &AppState, id: i64, status: TaskStatus) -> Result<(), AppError> {
    let patch = TaskPatch { status: Some(status), ..TaskPatch::default() };
    blocking(&state.db.tasks, move |conn| store::update(conn, id, &patch)?.ok_or_else(|| not_found(id))).await?;
    relay_tasks(state).await;
    Ok(())
}
