//! The security guard every request passes before routing: Host (DNS
//! rebinding), Origin (cross-site requests), body shape (JSON only, 1 MiB), and the
//! token or session cookie on `/api`.
//!
//! Whether a request needs credentials, and what an instance token may reach, is
//! decided on what the router will serve ([`Routed`]: the decoded path and the
//! matched pattern), so no spelling of a path reaches a handler unchecked.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, header::HeaderMap, Method};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use uuid::Uuid;

use crate::auth::SESSION_COOKIE;
use crate::error::AppError;
use crate::http::json::is_json;
use crate::http::route::Routed;
use crate::http::{AppState, MAX_BODY_BYTES};

/// Refuses foreign hosts and origins, non-JSON or oversized bodies, and unauthenticated API calls.
///
/// # Errors
/// 403, 413, 415 or 401 as [`AppError`]; the request never reaches a handler.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))?;
    let host = check_host(&state, req.headers())?;
    check_origin(&state, req.headers(), &host)?;
    check_body(req.headers())?;
    let route = Routed::of(req.request());
    if needs_auth(req.method(), &route) {
        // Whoever keeps presenting wrong credentials is slowed down (429) for a while.
        let ip = req.peer_addr().map(|a| a.ip());
        let presented = req.headers().contains_key(header::AUTHORIZATION) || req.cookie(SESSION_COOKIE).is_some();
        if presented {
            state.auth_failures.refuse_if_blocked(ip)?;
        }
        let caller = check_credentials(&state, &req).inspect_err(|_| {
            if presented {
                state.auth_failures.failed_from(ip);
            }
        })?;
        if let Caller::Instance(id) = caller {
            check_scope(id, req.method(), &route)?;
        }
        req.extensions_mut().insert(caller);
    }
    let mut res = next.call(req).await?;
    if route.is_api() {
        // API data is never cached nor sniffed into something else, errors included.
        let headers = res.headers_mut();
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        }
    }
    Ok(res)
}

/// Who is calling: the operator (the API token, a session, or no auth), or a
/// running instance with its own token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Operator,
    Instance(Uuid),
}

/// Handlers that act for someone take the caller; a request that reaches one
/// without having passed the credential check is refused (fail closed).
impl FromRequest for Caller {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Caller>()
                .copied()
                .ok_or_else(|| AppError::Unauthorized("this request was not authenticated".into())),
        )
    }
}

/// An instance token reaches only its own instance: its GETs, its messages,
/// `complete`, and its program's reports (`hooks`); never a decision on its own
/// permission requests.
fn check_scope(id: Uuid, method: &Method, route: &Routed) -> Result<(), AppError> {
    let pattern = route.pattern.as_deref().unwrap_or("");
    let instance_route = pattern == "/api/instances/{id}" || pattern.starts_with("/api/instances/{id}/");
    let own = instance_route && route.segment(2).and_then(|s| Uuid::parse_str(s).ok()) == Some(id);
    let allowed = own
        && (method == Method::GET
            || (method == Method::POST
                && (pattern == "/api/instances/{id}/messages"
                    || pattern == "/api/instances/{id}/complete"
                    || pattern == "/api/instances/{id}/hooks/{kind}")));
    if allowed {
        Ok(())
    } else {
        Err(AppError::Forbidden {
            code: "forbidden_scope",
            message: "an instance token is valid only for its own instance's messages, complete, hooks, and GETs"
                .into(),
        })
    }
}

fn forbidden(code: &'static str, message: String) -> AppError {
    AppError::Forbidden { code, message }
}

fn check_host(state: &AppState, headers: &HeaderMap) -> Result<String, AppError> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| forbidden("forbidden_host", "a Host header is required".into()))?
        .to_ascii_lowercase();
    if host_allowed(state, &host) {
        Ok(host)
    } else {
        Err(forbidden(
            "forbidden_host",
            format!("Host {host:?} is not this server; add it with --allow-host if it should be"),
        ))
    }
}

/// Splits `name[:port]` (IPv6 in brackets); a missing port is 80.
fn split_host(host: &str) -> Option<(&str, u16)> {
    let (name, rest) = if host.starts_with('[') {
        let end = host.find(']')? + 1;
        (&host[..end], &host[end..])
    } else {
        match host.rfind(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        }
    };
    let port = match rest.strip_prefix(':') {
        Some(p) => p.parse().ok()?,
        None if rest.is_empty() => 80,
        None => return None,
    };
    Some((name, port))
}

fn host_allowed(state: &AppState, host: &str) -> bool {
    let Some((name, port)) = split_host(host) else {
        return false;
    };
    let configured = state.settings.allowed_hosts.iter().any(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        allowed == host || (allowed == name && port == state.local_addr.port())
    });
    if configured {
        return true;
    }
    let bound = match state.local_addr.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    port == state.local_addr.port() && ["localhost", "127.0.0.1", "[::1]", bound.as_str()].contains(&name)
}

fn check_origin(state: &AppState, headers: &HeaderMap, host: &str) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/').to_ascii_lowercase();
    let same = origin == format!("http://{host}");
    let configured =
        state.settings.allowed_origins.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(&origin));
    if same || configured {
        Ok(())
    } else {
        Err(forbidden(
            "forbidden_origin",
            format!("Origin {origin:?} may not call this server; add it with --allow-origin if it should"),
        ))
    }
}

fn check_body(headers: &HeaderMap) -> Result<(), AppError> {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let has_body = length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return Ok(());
    }
    if length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(AppError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    if is_json(headers) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType("request bodies must be JSON (Content-Type: application/json)".into()))
    }
}

fn needs_auth(method: &Method, route: &Routed) -> bool {
    let session = route.is("/api/session");
    // Inbound triggers carry a signature made with the agent's trigger secret instead.
    let trigger = method == Method::POST && route.is("/api/hooks/agents/{name}");
    route.is_api() && !session && !trigger
}

fn check_credentials(state: &AppState, req: &ServiceRequest) -> Result<Caller, AppError> {
    let auth = &state.auth;
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("").trim().to_owned());
    if let Some(id) = bearer.as_deref().and_then(|token| state.shared.tokens.lookup(token)) {
        return Ok(Caller::Instance(id));
    }
    if !auth.enabled() {
        return Ok(Caller::Operator);
    }
    if let Some(presented) = bearer {
        return if auth.accepts_token(&presented) {
            Ok(Caller::Operator)
        } else {
            Err(AppError::Unauthorized("invalid token".into()))
        };
    }
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        return if state.sessions.accepts(cookie.value()) {
            Ok(Caller::Operator)
        } else {
            Err(AppError::Unauthorized("invalid or expired session; sign in again".into()))
        };
    }
    Err(AppError::Unauthorized(
        "missing token: send Authorization: Bearer TOKEN (the token is printed at start-up and kept in DATA_DIR/token)"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_split_into_name_and_port() {
        assert_eq!(split_host("localhost:7788"), Some(("localhost", 7788)));
        assert_eq!(split_host("[::1]:9"), Some(("[::1]", 9)));
        assert_eq!(split_host("example"), Some(("example", 80)));
        assert_eq!(split_host("localhost:x"), None);
        assert_eq!(split_host("[::1]junk"), None);
    }

    fn routed(path: &str) -> Routed {
        let pattern = [
            "/api/instances/{id}",
            "/api/instances/{id}/output",
            "/api/instances/{id}/messages",
            "/api/instances/{id}/complete",
            "/api/instances/{id}/input",
            "/api/tasks",
            "/api/session",
            "/api/hooks/agents/{name}",
        ]
        .into_iter()
        .find(|p| {
            let re = actix_web::dev::ResourceDef::new(*p);
            re.is_match(path)
        });
        Routed { path: path.to_owned(), pattern: pattern.map(str::to_owned) }
    }

    #[test]
    fn instance_tokens_reach_only_their_own_instance() {
        let id = Uuid::new_v4();
        let own = format!("/api/instances/{id}");
        let scope = |method: &Method, path: &str| check_scope(id, method, &routed(path));
        assert!(scope(&Method::GET, &own).is_ok());
        assert!(scope(&Method::GET, &format!("/api/instances/{}", id.to_string().to_uppercase())).is_ok());
        assert!(scope(&Method::GET, &format!("{own}/output")).is_ok());
        assert!(scope(&Method::POST, &format!("{own}/messages")).is_ok());
        assert!(scope(&Method::POST, &format!("{own}/complete")).is_ok());
        assert!(scope(&Method::POST, &format!("{own}/input")).is_err());
        assert!(scope(&Method::PUT, &own).is_err());
        assert!(scope(&Method::GET, &format!("/api/instances/{}", Uuid::new_v4())).is_err());
        assert!(scope(&Method::GET, &format!("{own}x")).is_err());
        assert!(scope(&Method::GET, "/api/tasks").is_err());
        assert!(scope(&Method::GET, &format!("{own}/unrouted")).is_err());
    }

    #[test]
    fn only_the_session_endpoints_skip_the_token() {
        let needs = |method: &Method, path: &str| needs_auth(method, &routed(path));
        assert!(needs(&Method::GET, "/api/tasks"));
        assert!(!needs(&Method::GET, "/api/session"));
        assert!(needs(&Method::PUT, "/api/sessions"));
        assert!(needs(&Method::GET, "/api/session/"));
        assert!(!needs(&Method::POST, "/api/session"));
        assert!(!needs(&Method::GET, "/healthz"));
        assert!(!needs(&Method::GET, "/apix"));
        assert!(!needs(&Method::POST, "/api/hooks/agents/ci"));
        assert!(needs(&Method::POST, "/api/hooks/agents/ci/x"));
        assert!(needs(&Method::GET, "/api/hooks/agents/ci"));
        assert!(needs(&Method::GET, "/api/unknown"));
    }
}
