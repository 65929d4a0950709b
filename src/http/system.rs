//! Service endpoints: health, metrics, the OpenAPI document, and the
//! token-for-cookie session exchange.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::json::Json;
use super::{blocking, AppState};
use crate::auth::SESSION_COOKIE;
use crate::error::{AppError, ErrorBody};

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
    let shared = state.shared.clone();
    let totals = crate::db::run(&state.db.agents, move |conn| -> Result<_, crate::db::DbError> {
        let names = crate::db::agents::names(conn)?;
        let mut totals: std::collections::BTreeMap<String, crate::metrics::AgentUsage> =
            names.values().map(|name| (name.clone(), crate::metrics::AgentUsage::default())).collect();
        for (id, agent) in shared.running.ids() {
            let (Some(name), Some(usage)) = (names.get(&agent), shared.running.usage(id)) else { continue };
            let total = totals.entry(name.clone()).or_default();
            total.memory_bytes += usage.memory_bytes;
            total.cpu_seconds += usage.cpu_seconds;
            total.pids += usage.pids;
            total.instances += 1;
        }
        Ok(totals.into_iter().collect::<Vec<_>>())
    })
    .await;
    match totals {
        Ok(totals) => state.metrics.set_agent_usage(&totals),
        Err(e) => tracing::warn!(error = %e, "cannot total the agents' usage"),
    }
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

/// Body of `POST /api/session`: the API token, or the code of a sign-in link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The API token.
    pub token: Option<String>,
    /// The code of a one-time sign-in link (`/#login=CODE`): works once, for 10 minutes.
    pub code: Option<String>,
}

/// Exchange the token, or a one-time sign-in code, for an HttpOnly, SameSite=Strict
/// session cookie (for browsers). The session lasts 30 days unless ended by signing
/// out or `DELETE /api/sessions`.
#[utoipa::path(operation_id = "create_session", tag = "service", security(()), request_body = SessionRequest, responses(
    (status = 204, description = "Signed in; the cookie is set"),
    (status = 401, description = "Wrong token, or a sign-in code that is unknown, used or expired", body = ErrorBody),
    (status = 422, description = "Neither or both of token and code", body = ErrorBody),
    (status = 429, description = "Too many failed attempts from this address", body = ErrorBody)))]
#[post("/api/session")]
pub async fn create_session(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: Json<SessionRequest>,
) -> Result<HttpResponse, AppError> {
    let auth = &state.auth;
    let ip = req.peer_addr().map(|a| a.ip());
    state.auth_failures.refuse_if_blocked(ip)?;
    if !auth.enabled() {
        return Ok(HttpResponse::NoContent().finish());
    }
    let accepted = match (&body.0.token, &body.0.code) {
        (Some(token), None) => auth.accepts_token(token.trim()),
        (None, Some(code)) => state.login_codes.redeem(code.trim()),
        _ => return Err(AppError::invalid("token", "send either the token or the code of a sign-in link")),
    };
    if !accepted {
        state.auth_failures.failed_from(ip);
        return Err(AppError::Unauthorized(if body.0.code.is_some() {
            "this sign-in link was used already or has expired; `switchboard login-link` prints a new one".into()
        } else {
            "invalid token".into()
        }));
    }
    let app = state.clone();
    let value = blocking(&state.db.agents, move |conn| app.sessions.start(conn).map_err(AppError::internal)).await?;
    let cookie = Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(CookieAge::days(30))
        .finish();
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}

/// Whether this browser is signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionStatus {
    /// True with a valid session cookie or token, or when the token check is off.
    pub signed_in: bool,
}

/// Whether the caller is signed in (answers 200 either way, so a page can ask
/// without provoking an error).
#[utoipa::path(operation_id = "get_session", tag = "service", security(()), responses(
    (status = 200, description = "Signed in or not", body = SessionStatus)))]
#[get("/api/session")]
pub async fn session_status(state: web::Data<AppState>, req: actix_web::HttpRequest) -> HttpResponse {
    let auth = &state.auth;
    let cookie = req.cookie(SESSION_COOKIE).is_some_and(|c| state.sessions.accepts(c.value()));
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| auth.accepts_token(t.trim()));
    HttpResponse::Ok().json(SessionStatus { signed_in: !auth.enabled() || cookie || bearer })
}

/// Sign out: the session is ended on the server (its cookie no longer works,
/// wherever a copy of it is) and the cookie is removed.
#[utoipa::path(operation_id = "delete_session", tag = "service", security(()), responses((status = 204, description = "Signed out")))]
#[delete("/api/session")]
pub async fn delete_session(state: web::Data<AppState>, req: actix_web::HttpRequest) -> Result<HttpResponse, AppError> {
    if let Some(presented) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) {
        let app = state.clone();
        blocking(&state.db.agents, move |conn| Ok(app.sessions.end(conn, &presented)?)).await?;
    }
    let mut cookie = Cookie::build(SESSION_COOKIE, "").path("/").http_only(true).same_site(SameSite::Strict).finish();
    cookie.make_removal();
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}

/// A one-time sign-in link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginLink {
    /// The dashboard address that signs a browser in (`…/#login=CODE`).
    pub url: String,
    /// The code alone, for `POST /api/session {"code"}`.
    pub code: String,
    pub expires_at: String,
}

/// Make a one-time sign-in link for the dashboard: it works once, for 10 minutes,
/// so it is safe in browser history (`switchboard login-link` calls this).
#[utoipa::path(operation_id = "create_login_link", tag = "service", responses(
    (status = 201, description = "A fresh link", body = LoginLink),
    (status = 401, description = "No valid credentials", body = ErrorBody)))]
#[post("/api/login-links")]
pub async fn create_login_link(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (code, expires) = state.login_codes.mint().map_err(AppError::internal)?;
    let link = LoginLink {
        url: format!("{}/#login={code}", state.shared.base_url),
        code,
        expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    Ok(HttpResponse::Created().json(link))
}

/// How many sessions were ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    pub ended: usize,
}

/// End every browser session at once (every signed-in browser must sign in again).
#[utoipa::path(operation_id = "delete_sessions", tag = "service", responses(
    (status = 200, description = "Every session ended", body = SessionsEnded),
    (status = 401, description = "No valid credentials", body = ErrorBody)))]
#[delete("/api/sessions")]
pub async fn delete_sessions(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let app = state.clone();
    let ended = blocking(&state.db.agents, move |conn| Ok(app.sessions.end_all(conn)?)).await?;
    tracing::info!(ended, "every browser session ended");
    Ok(HttpResponse::Ok().json(SessionsEnded { ended }))
}
