//! `/api/webhooks`: outbound subscriptions, their attempt log, and redelivery.

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::json::{Json, PageQuery};
use super::{blocking, AppState};
use crate::db::agents;
use crate::db::deliveries::{self as queue, Attempt};
use crate::db::webhooks as store;
use crate::domain::webhook::{NewWebhook, Webhook, WebhookPatch};
use crate::error::{AppError, ErrorBody};
use crate::webhooks::queue::{self as fan, RedeliverError};

fn webhook_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| not_found(raw))
}

fn not_found(id: impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!("webhook {id} not found"))
}

fn known_agent(conn: &rusqlite::Connection, agent_id: Option<Uuid>) -> Result<(), AppError> {
    match agent_id {
        Some(id) if agents::get(conn, id)?.is_none() => {
            Err(AppError::invalid("agent_id", format!("agent {id} does not exist")))
        }
        _ => Ok(()),
    }
}

/// List subscriptions, newest first (secrets are never shown).
#[utoipa::path(operation_id = "list_webhooks", tag = "webhooks", params(PageQuery), responses(
    (status = 200, description = "Subscriptions, newest first", body = [Webhook])))]
#[get("/api/webhooks")]
pub async fn list(state: web::Data<AppState>, query: web::Query<PageQuery>) -> Result<HttpResponse, AppError> {
    let page = query.page()?;
    let hooks = blocking(&state.db.agents, move |conn| Ok(store::list(conn, page)?)).await?;
    Ok(HttpResponse::Ok().json(hooks))
}

/// Subscribe a URL to events; the answer carries the signing secret, shown only this once.
#[utoipa::path(operation_id = "create_webhook", tag = "webhooks", request_body = NewWebhook, responses(
    (status = 201, description = "Created; `secret` is in this answer only", body = Webhook),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[post("/api/webhooks")]
pub async fn create(state: web::Data<AppState>, body: Json<NewWebhook>) -> Result<HttpResponse, AppError> {
    let record = body.0.validate()?;
    refuse_own_address(&state, &record.url)?;
    let hook = blocking(&state.db.agents, move |conn| {
        known_agent(conn, record.agent_id)?;
        Ok(store::insert(conn, &record)?)
    })
    .await?;
    Ok(HttpResponse::Created().json(hook))
}

/// One subscription.
#[utoipa::path(operation_id = "get_webhook", tag = "webhooks", params(("id" = Uuid, Path)), responses(
    (status = 200, description = "The subscription", body = Webhook),
    (status = 404, description = "No such subscription", body = ErrorBody)))]
#[get("/api/webhooks/{id}")]
pub async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = webhook_id(&id)?;
    let hook = blocking(&state.db.agents, move |conn| store::get(conn, id)?.ok_or_else(|| not_found(id))).await?;
    Ok(HttpResponse::Ok().json(hook))
}

/// Change some fields; `"secret": "generate"` makes a new secret (shown in this answer only).
#[utoipa::path(operation_id = "update_webhook", tag = "webhooks", params(("id" = Uuid, Path)), request_body = WebhookPatch, responses(
    (status = 200, description = "The changed subscription", body = Webhook),
    (status = 404, description = "No such subscription", body = ErrorBody),
    (status = 422, description = "Invalid field", body = ErrorBody)))]
#[put("/api/webhooks/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<WebhookPatch>,
) -> Result<HttpResponse, AppError> {
    let id = webhook_id(&id)?;
    let change = body.0.validate()?;
    if let Some(url) = &change.url {
        refuse_own_address(&state, url)?;
    }
    let hook = blocking(&state.db.agents, move |conn| {
        known_agent(conn, change.agent_id.flatten())?;
        store::update(conn, id, change)?.ok_or_else(|| not_found(id))
    })
    .await?;
    // Turned on again, what it had queued goes out now: the dispatcher is woken by
    // the commit (`db::signal`).
    Ok(HttpResponse::Ok().json(hook))
}

/// Delete a subscription, its queued deliveries and its log.
#[utoipa::path(operation_id = "delete_webhook", tag = "webhooks", params(("id" = Uuid, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 404, description = "No such subscription", body = ErrorBody)))]
#[delete("/api/webhooks/{id}")]
pub async fn delete(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = webhook_id(&id)?;
    blocking(&state.db.agents, move |conn| if store::delete(conn, id)? { Ok(()) } else { Err(not_found(id)) }).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every delivery attempt, newest first.
#[utoipa::path(operation_id = "list_webhook_deliveries", tag = "webhooks", params(("id" = Uuid, Path), PageQuery), responses(
    (status = 200, description = "Attempts, newest first", body = [Attempt]),
    (status = 404, description = "No such subscription", body = ErrorBody)))]
#[get("/api/webhooks/{id}/deliveries")]
pub async fn deliveries(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let id = webhook_id(&id)?;
    let page = query.page()?;
    let attempts = blocking(&state.db.agents, move |conn| {
        store::get(conn, id)?.ok_or_else(|| not_found(id))?;
        Ok(queue::attempts(conn, id, page)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(attempts))
}

/// Body of `POST /api/webhooks/:id/redeliver`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    /// The event to send again (the `id` of the payload, the `event_id` of the log).
    pub event_id: i64,
}

/// Send an event to this subscription again, now, with the delivery's own `webhook-id`.
#[utoipa::path(operation_id = "redeliver_webhook_event", tag = "webhooks", params(("id" = Uuid, Path)), request_body = RedeliverRequest, responses(
    (status = 202, description = "Queued; the attempt shows in the deliveries log"),
    (status = 404, description = "No such subscription, or the event is not in the log", body = ErrorBody),
    (status = 409, description = "The subscription is not active", body = ErrorBody)))]
#[post("/api/webhooks/{id}/redeliver")]
pub async fn redeliver(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<RedeliverRequest>,
) -> Result<HttpResponse, AppError> {
    let id = webhook_id(&id)?;
    let event_id = body.0.event_id;
    let delivery = blocking(&state.db.agents, move |conn| {
        fan::redeliver(conn, id, event_id).map_err(|e| match e {
            RedeliverError::NoWebhook(_) | RedeliverError::NoEvent(_) => AppError::NotFound(e.to_string()),
            RedeliverError::Inactive => AppError::Conflict { code: "inactive", message: e.to_string() },
            RedeliverError::Db(e) => AppError::from(e),
        })
    })
    .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "delivery_id": delivery, "event_id": event_id })))
}

/// A webhook may not call the server that sends it (each delivery would be a
/// request to its own API, signed with nothing it checks, in a loop of its own).
fn refuse_own_address(state: &AppState, url: &str) -> Result<(), AppError> {
    if targets(url, state.local_addr, &state.settings.allowed_hosts) {
        Err(AppError::invalid(
            "url",
            "is this server's own address and port; a webhook may not call the server that sends it",
        ))
    } else {
        Ok(())
    }
}

/// Whether `url` names `local` (any loopback or unspecified address, `localhost`,
/// the bound address or a configured host name, on the bound port).
fn targets(url: &str, local: std::net::SocketAddr, allowed_hosts: &[String]) -> bool {
    let Ok(uri) = url.parse::<actix_web::http::Uri>() else {
        return false;
    };
    let default_port = if uri.scheme_str() == Some("https") { 443 } else { 80 };
    if uri.port_u16().unwrap_or(default_port) != local.port() {
        return false;
    }
    let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let named = host == "localhost"
        || host.ends_with(".localhost")
        || allowed_hosts.iter().any(|h| h.split(':').next().is_some_and(|name| name.eq_ignore_ascii_case(&host)));
    let ip = host.parse::<std::net::IpAddr>().ok();
    let address = ip.is_some_and(|ip| ip.is_loopback() || ip.is_unspecified() || ip == local.ip());
    named || address
}

#[cfg(test)]
mod tests {
    use super::targets;

    #[test]
    fn the_servers_own_address_is_recognised_in_any_spelling() {
        let local: std::net::SocketAddr = "127.0.0.1:7788".parse().expect("addr");
        for own in [
            "http://127.0.0.1:7788/api/tasks",
            "http://localhost:7788/x",
            "http://127.9.9.9:7788/",
            "http://[::1]:7788/",
            "http://0.0.0.0:7788/",
            "https://LOCALHOST:7788/",
            "http://box.example:7788/",
        ] {
            assert!(targets(own, local, &["box.example".into()]), "{own}");
        }
        for other in ["http://127.0.0.1:7789/", "http://example.com:7788/", "http://127.0.0.1/"] {
            assert!(!targets(other, local, &[]), "{other}");
        }
    }
}
