//! `Idempotency-Key` on POSTs that create or type something: a repeat of a key
//! within 24 hours gets the first answer and does nothing again. The key is
//! claimed before the request runs, so concurrent repeats cannot both run; an
//! answer other than 2xx frees the key, so a retry runs again.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::db::idempotency::{self, Claim};
use crate::error::AppError;
use crate::http::route::Routed;
use crate::http::{blocking, AppState};

/// Longest accepted key.
const MAX_KEY: usize = 255;

/// Whether POSTs to the route matched by this pattern take an `Idempotency-Key`.
fn covered(pattern: Option<&str>) -> bool {
    matches!(
        pattern,
        Some(
            "/api/agents/{id}/instances"
                | "/api/instances/{id}/messages"
                | "/api/instances/{id}/input"
                | "/api/tasks/{id}/run"
                | "/api/hooks/agents/{name}"
        )
    )
}

/// Replays or records answers of covered POSTs that carry a key.
///
/// # Errors
/// 409 while a first request with the key is still running, 422 for a bad key;
/// otherwise the inner service's answer.
pub async fn idempotent(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = req.headers().get("idempotency-key").map(|v| v.to_str().unwrap_or("").to_owned());
    let route = Routed::of(req.request());
    let (Some(key), true) = (key, req.method() == Method::POST && covered(route.pattern.as_deref())) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(AppError::invalid("Idempotency-Key", format!("must be 1 to {MAX_KEY} visible characters")).into());
    }
    let state = req.app_data::<web::Data<AppState>>().cloned().ok_or_else(|| AppError::internal("state missing"))?;
    // Keyed by what is served, so another spelling of the same path is a repeat.
    let scope = format!("POST {}", route.canonical_path());
    let (s, k) = (scope.clone(), key.clone());
    match blocking(&state.db.agents, move |conn| Ok(idempotency::claim(conn, &s, &k)?)).await? {
        Claim::Answered { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let response = HttpResponse::build(status)
                .content_type("application/json")
                .insert_header(("Idempotent-Replayed", "true"))
                .body(body);
            return Ok(req.into_response(response));
        }
        Claim::InProgress => {
            return Err(AppError::Conflict {
                code: "idempotency_in_progress",
                message: "a request with this Idempotency-Key is still being answered; retry shortly".into(),
            }
            .into())
        }
        Claim::Claimed => {}
    }
    let response = next.call(req).await;
    let record = |status: Option<(u16, Vec<u8>)>| {
        let (s, k) = (scope.clone(), key.clone());
        blocking(&state.db.agents, move |conn| {
            match status {
                Some((code, body)) => idempotency::answer(conn, &s, &k, code, &body)?,
                None => idempotency::release(conn, &s, &k)?,
            }
            Ok(())
        })
    };
    let response = match response {
        Ok(response) if response.status().is_success() => response,
        other => {
            record(None).await?;
            return Ok(other?.map_into_boxed_body());
        }
    };
    let (request, response) = response.into_parts();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = to_bytes(response.into_body()).await.map_err(|_| AppError::internal("cannot read the answer"))?;
    record(Some((status.as_u16(), body.to_vec()))).await?;
    let mut rebuilt = HttpResponse::build(status);
    if let Some(content_type) = content_type {
        rebuilt.insert_header((header::CONTENT_TYPE, content_type));
    }
    Ok(ServiceResponse::new(request, rebuilt.body(body)))
}

#[cfg(test)]
mod tests {
    use super::covered;

    #[test]
    fn only_creating_and_typing_posts_are_covered() {
        assert!(covered(Some("/api/agents/{id}/instances")));
        assert!(covered(Some("/api/instances/{id}/messages")));
        assert!(covered(Some("/api/instances/{id}/input")));
        assert!(covered(Some("/api/tasks/{id}/run")));
        assert!(covered(Some("/api/hooks/agents/{name}")));
        assert!(!covered(Some("/api/tasks")));
        assert!(!covered(Some("/api/instances/{id}/resize")));
        assert!(!covered(None));
    }
}
