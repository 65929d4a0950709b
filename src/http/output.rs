//! `GET /api/instances/:id/output?offset=N`: the raw transcript from byte N.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use utoipa::IntoParams;

use super::instances::{instance_id, load};
use super::AppState;
use crate::error::{AppError, ErrorBody};

/// Query of the output endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutputQuery {
    /// Byte offset to start from (default 0).
    #[param(value_type = Option<u64>)]
    pub offset: Option<String>,
}

/// The raw transcript from byte `offset`; `X-Transcript-Length` gives the length
/// it was read up to, which is the offset to ask for next. When `offset` lies in the
/// part dropped by `transcript_max_mb`, the body starts at the oldest byte kept,
/// which `X-Transcript-Start` names.
#[utoipa::path(operation_id = "instance_output", tag = "instances", params(("id" = Uuid, Path), OutputQuery), responses(
    (status = 200, description = "Transcript bytes", content_type = "text/plain"),
    (status = 404, description = "No such instance", body = ErrorBody)))]
#[get("/api/instances/{id}/output")]
pub async fn output(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<OutputQuery>,
) -> Result<HttpResponse, AppError> {
    let id = instance_id(&id)?;
    let offset: u64 = match query.offset.as_deref() {
        None => 0,
        Some(text) => text.parse().map_err(|_| AppError::invalid("offset", "must be a whole number of bytes"))?,
    };
    load(&state, id).await?;
    let response = |start: u64, len: u64| {
        let mut r = HttpResponse::Ok();
        r.content_type("text/plain")
            .insert_header(("X-Transcript-Length", len.to_string()))
            .insert_header(("X-Transcript-Start", start.to_string()));
        r
    };
    let mut file = match tokio::fs::File::open(state.shared.transcript(id)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(response(offset, 0).finish()),
        Err(e) => return Err(AppError::internal(e)),
    };
    let len = file.metadata().await.map_err(AppError::internal)?.len();
    let start = crate::terminal::transcript::data_start(&file, offset, len);
    if start >= len {
        return Ok(response(start, len).finish());
    }
    file.seek(std::io::SeekFrom::Start(start)).await.map_err(AppError::internal)?;
    let body = tokio_util::io::ReaderStream::new(file.take(len - start));
    Ok(response(start, len).no_chunking(len - start).streaming(body))
}
