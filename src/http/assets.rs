//! The dashboard: files of `static/`, embedded in the binary so that it works from
//! any directory. Open like `/healthz` (the data behind it needs the token).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::error::AppError;

#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Assets;

/// The page's policy: its own scripts only; xterm.js sets inline styles.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

fn serve(req: &HttpRequest, path: &str) -> Result<HttpResponse, AppError> {
    let file = Assets::get(path).ok_or_else(|| AppError::NotFound(format!("no file {path}")))?;
    let etag: String = file.metadata.sha256_hash().iter().take(16).map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{etag}\"");
    let cached = req.headers().get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if cached { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")));
    if cached {
        return Ok(response.finish());
    }
    Ok(response.content_type(content_type(path)).body(file.data.into_owned()))
}

/// The dashboard page.
#[get("/")]
pub async fn index(req: HttpRequest) -> Result<HttpResponse, AppError> {
    serve(&req, "index.html")
}

/// The dashboard's scripts, styles and vendored libraries.
#[get("/static/{path:.*}")]
pub async fn static_file(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    serve(&req, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_vendored_terminal_are_embedded() {
        for path in ["index.html", "app.js", "app.css", "vendor/xterm/xterm.mjs", "vendor/xterm/LICENSE"] {
            assert!(Assets::get(path).is_some(), "{path}");
        }
        assert!(Assets::get("../Cargo.toml").is_none());
        assert_eq!(content_type("vendor/xterm/xterm.mjs"), "text/javascript; charset=utf-8");
    }
}
