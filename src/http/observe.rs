//! Request accounting: every answer is counted in the metrics by matched route
//! (never the raw path, which would hold ids) and logged at debug level.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::AppState;

/// Counts and times the request, whatever its outcome.
///
/// # Errors
/// Passes on the inner service's error unchanged.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(state) = state {
        state.metrics.observe_request(&method, &route, status.as_u16(), seconds);
    }
    tracing::debug!(%method, %route, status = status.as_u16(), ms = seconds * 1000.0, "request");
    result
}
