//! Reading requests: a JSON body extractor with precise errors (400 malformed,
//! 413 too large, 415 not JSON, 422 naming the field), and query/path helpers.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{http::header, web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

use super::MAX_BODY_BYTES;
use crate::db::Page;
use crate::error::AppError;

/// A JSON request body, deserialized with errors that name the field at fault.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req.headers());
        let body = RawJson::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(not_json());
            }
            parse(&body.await?.0).map(Json)
        })
    }
}

/// A request body kept as raw bytes (to check a signature over them before
/// parsing); it must be JSON unless it is empty.
#[derive(Debug)]
pub struct RawJson(pub web::Bytes);

impl FromRequest for RawJson {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req.headers());
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body.await.map_err(|e| read_error(&e))?;
            if !bytes.is_empty() && !is_json {
                return Err(not_json());
            }
            Ok(RawJson(bytes))
        })
    }
}

fn not_json() -> AppError {
    AppError::UnsupportedMediaType("the body must be JSON (Content-Type: application/json)".into())
}

fn read_error(e: &actix_web::Error) -> AppError {
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => AppError::PayloadTooLarge(MAX_BODY_BYTES),
        _ => AppError::BadRequest { code: "bad_request", message: format!("cannot read the body: {e}") },
    }
}

/// Whether the headers say the body is JSON.
#[must_use]
pub fn is_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Deserializes a JSON document.
///
/// # Errors
/// 400 for malformed JSON (including nesting past serde_json's depth limit),
/// 422 naming the field for a well-formed document of the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| classify(&e))?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> AppError {
    AppError::BadRequest { code: "malformed_json", message: format!("malformed JSON: {e}") }
}

fn classify(e: &serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let inner = e.inner();
    if !inner.is_data() {
        return malformed(inner);
    }
    let text = inner.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    let path = e.path().to_string();
    let field = if path == "." { backticked(&message).unwrap_or_else(|| "body".to_owned()) } else { path };
    AppError::Validation { field, message }
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// `?limit=&offset=` of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1–1000, default 100.
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// Rows to skip, default 0.
    #[param(value_type = Option<u32>)]
    pub offset: Option<String>,
}

impl PageQuery {
    /// Checks the paging parameters.
    ///
    /// # Errors
    /// See [`page`].
    pub fn page(&self) -> Result<Page, AppError> {
        page(self.limit.as_deref(), self.offset.as_deref())
    }
}

/// Checks `limit` and `offset` query values.
///
/// # Errors
/// 422 for a limit outside 1–1000 or an offset that is not a whole number.
pub fn page(limit: Option<&str>, offset: Option<&str>) -> Result<Page, AppError> {
    let limit = match limit {
        None => 100,
        Some(text) => text.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
            AppError::invalid("limit", format!("must be a whole number from 1 to 1000, got {text:?}"))
        })?,
    };
    let offset = match offset {
        None => 0,
        Some(text) => {
            text.parse().map_err(|_| AppError::invalid("offset", format!("must be a whole number, got {text:?}")))?
        }
    };
    Ok(Page { limit, offset })
}

/// Parses an optional UUID query parameter.
///
/// # Errors
/// 422 naming `field` when it is not a UUID.
pub fn uuid_param(value: Option<&str>, field: &str) -> Result<Option<uuid::Uuid>, AppError> {
    value.map(|v| uuid::Uuid::parse_str(v).map_err(|_| AppError::invalid(field, "must be a UUID"))).transpose()
}

/// The error for an unreadable query string.
#[allow(clippy::needless_pass_by_value, reason = "the signature QueryConfig::error_handler requires")]
pub fn query_error(e: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    AppError::BadRequest { code: "bad_query", message: format!("invalid query string: {e}") }.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::NewTask;

    fn status_of<T: std::fmt::Debug>(result: Result<T, AppError>) -> u16 {
        use actix_web::ResponseError;
        result.expect_err("refused").status_code().as_u16()
    }

    #[test]
    fn shape_errors_name_the_field() {
        let err = parse::<NewTask>(br#"{"title": 5}"#).expect_err("wrong type");
        assert!(matches!(&err, AppError::Validation { field, .. } if field == "title"), "{err:?}");
        let err = parse::<NewTask>(br#"{"description": "x"}"#).expect_err("missing");
        assert!(matches!(&err, AppError::Validation { field, .. } if field == "title"), "{err:?}");
        let err = parse::<NewTask>(br#"{"title": "t", "colour": 1}"#).expect_err("unknown");
        assert!(matches!(&err, AppError::Validation { field, .. } if field == "colour"), "{err:?}");
    }

    #[test]
    fn syntax_errors_and_deep_nesting_are_malformed() {
        assert_eq!(status_of(parse::<NewTask>(b"{\"title\": ")), 400);
        assert_eq!(status_of(parse::<NewTask>(b"{\"title\": \"a\"} trailing")), 400);
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(status_of(parse::<serde_json::Value>(deep.as_bytes())), 400);
        assert_eq!(status_of(parse::<NewTask>(b"\xff\xfe")), 400);
    }
}
