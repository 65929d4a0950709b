//! Service endpoints: the dashboard shell, health, metrics, the OpenAPI
//! document, and the token-for-cookie session exchange.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::json::Json;
use super::AppState;
use crate::auth::SESSION_COOKIE;
use crate::error::{AppError, ErrorBody};

const INDEX_HTML: &str = include_str!("../../static/index.html");

/// The dashboard shell (open; its data needs the token).
#[get("/")]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(INDEX_HTML)
}

/// Health of the service.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the service answers.
    pub status: &'static str,
    /// The running version.
    pub version: &'static str,
}

/// Liveness check (no token needed).
#[utoipa::path(operation_id = "healthz", tag = "service", security(()), responses((status = 200, description = "Serving", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(operation_id = "metrics", tag = "service", security(()), responses((status = 200, description = "Metrics", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}

/// This API's OpenAPI 3 document.
#[utoipa::path(operation_id = "openapi", tag = "service", responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
#[get("/api/openapi.json")]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(super::openapi::ApiDoc::openapi())
}

/// Body of `POST /api/session`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The API token.
    pub token: String,
}

/// Exchange the token for an HttpOnly, SameSite=Strict session cookie (for browsers).
#[utoipa::path(operation_id = "create_session", tag = "service", security(()), request_body = SessionRequest, responses(
    (status = 204, description = "Signed in; the cookie is set"),
    (status = 401, description = "Wrong token", body = ErrorBody)))]
#[post("/api/session")]
pub async fn create_session(state: web::Data<AppState>, body: Json<SessionRequest>) -> Result<HttpResponse, AppError> {
    let auth = &state.auth;
    let Some(value) = auth.session_value() else {
        return Ok(HttpResponse::NoContent().finish());
    };
    if !auth.accepts_token(body.0.token.trim()) {
        return Err(AppError::Unauthorized("invalid token".into()));
    }
    let cookie = Cookie::build(SESSION_COOKIE, value.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(CookieAge::days(30))
        .finish();
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}

/// Sign out: the session cookie is removed.
#[utoipa::path(operation_id = "delete_session", tag = "service", security(()), responses((status = 204, description = "Signed out")))]
#[delete("/api/session")]
pub async fn delete_session() -> HttpResponse {
    let mut cookie = Cookie::build(SESSION_COOKIE, "").path("/").http_only(true).same_site(SameSite::Strict).finish();
    cookie.make_removal();
    HttpResponse::NoContent().cookie(cookie).finish()
}
