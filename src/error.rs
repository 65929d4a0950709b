//! `AppError`: the HTTP edge's error type. Lower layers return their own errors;
//! they are converted here and only here (the `From` impls below), and each variant
//! is one status code rendered as `{"error": {"code": …, "message": …}}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request could not be read (malformed JSON, bad query string).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: missing or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a foreign Host or Origin, or a token without the right scope.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: unknown id or route.
    #[error("{0}")]
    NotFound(String),
    /// 409: duplicate name or illegal state transition.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 409 `workspace_dirty`: deleting would lose work; `lost` names it, per instance.
    #[error("{message}")]
    WorkspaceDirty { message: String, lost: Vec<LostWork> },
    /// 409 `moved_on`: a reply named a question the instance no longer waits on;
    /// nothing was typed. Carries what it waits on now, if anything.
    #[error("{message}")]
    MovedOn { message: String, status: String, prompt: Option<String>, wait_id: Option<String> },
    /// A known path asked with a method it does not take; `allow` lists those it does.
    #[error("{message}")]
    MethodNotAllowed { message: String, allow: String },
    /// 413: the body is over the limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: a body that is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: a field failed validation.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// 429: a limit was reached.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: Option<u64> },
    /// 503: the server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a fault on our side; the detail goes to the log, not to the client.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// The error as clients see it (the body's `error`).
    #[must_use]
    pub fn detail(&self) -> ErrorDetail {
        let (message, field) = match self {
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ("internal error; the server log has the detail".to_owned(), None)
            }
            AppError::Validation { field, message } => (format!("{field}: {message}"), Some(field.clone())),
            other => (other.to_string(), None),
        };
        let lost = match self {
            AppError::WorkspaceDirty { lost, .. } => Some(lost.clone()),
            _ => None,
        };
        let now = match self {
            AppError::MovedOn { status, prompt, wait_id, .. } => {
                Some(MovedTo { status: status.clone(), prompt: prompt.clone(), wait_id: wait_id.clone() })
            }
            _ => None,
        };
        ErrorDetail { code: self.code().to_owned(), message, field, lost, now }
    }

    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation { field: field.into(), message: message.into() }
    }

    /// A 500 whose detail is logged.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        AppError::Internal(detail.to_string())
    }

    /// A 409: the instance cannot be typed into or resized as it is `status`.
    pub fn not_running(status: &str) -> Self {
        AppError::Conflict { code: "not_running", message: format!("the instance is {status}, not running") }
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. } | AppError::Forbidden { code, .. } | AppError::Conflict { code, .. } => {
                code
            }
            AppError::Unauthorized(_) => "unauthorized",
            AppError::WorkspaceDirty { .. } => "workspace_dirty",
            AppError::MovedOn { .. } => "moved_on",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Validation { .. } => "validation_failed",
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }
}

impl From<crate::domain::Invalid> for AppError {
    fn from(e: crate::domain::Invalid) -> Self {
        AppError::Validation { field: e.field, message: e.message }
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Conflict(message) => AppError::Conflict { code: "conflict", message },
            other => AppError::internal(other),
        }
    }
}

impl From<crate::actors::registry::CreateError> for AppError {
    fn from(e: crate::actors::registry::CreateError) -> Self {
        use crate::actors::registry::CreateError;
        match e {
            CreateError::Closing => AppError::Unavailable(e.to_string()),
            CreateError::LimitReached { .. } => {
                AppError::TooManyRequests { message: e.to_string(), retry_after_secs: None }
            }
            CreateError::AgentGone(_) => AppError::NotFound(e.to_string()),
            CreateError::Duplicate(message) => AppError::Conflict { code: "duplicate_delivery", message },
            CreateError::Storage(detail) => AppError::internal(detail),
        }
    }
}

impl From<crate::actors::instance::InstanceError> for AppError {
    fn from(e: crate::actors::instance::InstanceError) -> Self {
        use crate::actors::instance::InstanceError;
        match e {
            InstanceError::NotRunning(status) => AppError::not_running(status),
            InstanceError::InputFull(_) => {
                AppError::TooManyRequests { message: e.to_string(), retry_after_secs: Some(1) }
            }
        }
    }
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `validation_failed`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// For `validation_failed`: the field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `workspace_dirty`: what deleting would lose, per instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<Vec<LostWork>>,
    /// For `moved_on`: what the instance is now (`status`, and while it waits, the
    /// `prompt` and `wait_id` of the question it waits on now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub now: Option<MovedTo>,
}

/// Where an instance moved on to, for a reply that came too late (`moved_on`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MovedTo {
    pub status: String,
    pub prompt: Option<String>,
    pub wait_id: Option<String>,
}

/// Work that deleting an instance's worktree would lose.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LostWork {
    pub instance_id: uuid::Uuid,
    pub branch: String,
    /// Uncommitted files (`path (uncommitted)`) and commits no other branch holds
    /// (`commit <hash> <subject>`).
    pub items: Vec<String>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } | AppError::WorkspaceDirty { .. } | AppError::MovedOn { .. } => {
                StatusCode::CONFLICT
            }
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody { error: self.detail() };
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            AppError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::TooManyRequests { retry_after_secs: Some(secs), .. } => {
                response.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            AppError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, allow.clone()));
            }
            _ => {}
        }
        response.json(body)
    }
}
