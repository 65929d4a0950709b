//! `/api/agents`: agents and their settings in `agents.db`.

use actix_web::{delete, get, post, put, web, HttpResponse};
use uuid::Uuid;

use super::json::{Json, PageQuery};
use super::{blocking, AppState};
use crate::actors::registry::{KeepAgent, TerminateAgent};
use crate::db::{agents as store, instances};
use crate::domain::agent::{Agent, AgentPatch, NewAgent};
use crate::domain::instance::Instance;
use crate::error::{AppError, ErrorBody};

fn agent_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| not_found(raw))
}

fn not_found(id: impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!("agent {id} not found"))
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
    let agent = blocking(&state.db.agents, move |conn| {
        let (record, settings) = body.0.validate()?;
        Ok(store::insert(conn, &record, &settings)?.public())
    })
    .await?;
    Ok(HttpResponse::Created().json(agent))
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
    let agent = blocking(&state.db.agents, move |conn| {
        let change = body.0.validate()?;
        store::update(conn, id, change)?.ok_or_else(|| not_found(id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(agent.public()))
}

/// Delete an agent; its running instances are terminated first, then its
/// instances and messages go with it.
#[utoipa::path(operation_id = "delete_agent", tag = "agents", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such agent", body = ErrorBody)))]
#[delete("/api/agents/{id}")]
pub async fn delete(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = agent_id(&id)?;
    blocking(&state.db.agents, move |conn| store::get(conn, id)?.ok_or_else(|| not_found(id))).await?;
    state.registry.send(TerminateAgent(id)).await.map_err(AppError::internal)?;
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
    if deleted.is_err() {
        state.registry.do_send(KeepAgent(id));
    }
    deleted?;
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
