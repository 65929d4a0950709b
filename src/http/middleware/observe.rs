//! Request accounting: every answer is counted in the metrics by matched route
//! (never the raw path, which would hold ids) and by method from a fixed set, so no
//! client can grow the label sets, and logged at debug level.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::http::route::Routed;
use crate::http::AppState;

/// Counts and times the request, whatever its outcome.
///
/// # Errors
/// Passes on the inner service's error unchanged.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = Routed::of(req.request()).pattern.unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(state) = state {
        state.metrics.observe_request(method, &route, status.as_u16(), seconds);
    }
    tracing::debug!(%method, %route, status = status.as_u16(), ms = seconds * 1000.0, "request");
    result
}

/// The metrics label of a method: the standard ones by name, anything else `other`
/// (the parser accepts any token as a method; a label per spelling would grow
/// without bound).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;
    use actix_web::http::Method;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"XYZZY").expect("a token");
        assert_eq!(method_label(&odd), "other");
    }
}
