//! The HTTP edge: the whole route table, shared state, and helpers every handler
//! uses. One file per resource; handlers extract, call the domain and storage
//! layers off the async workers, and map the result to a response.

pub mod agents;
pub mod approvals;
pub mod assets;
pub mod instances;
pub mod integrations;
pub mod json;
pub mod messages;
pub mod middleware;
pub mod openapi;
pub mod output;
pub mod route;
pub mod sse;
pub mod stream;
pub mod system;
pub mod tasks;
pub mod text;
pub mod triggers;
pub mod webhooks;
pub mod workspaces;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::web;

use crate::actors::registry::Registry;
use crate::actors::Shared;
use crate::auth::Auth;
use crate::config::Settings;
use crate::db::{Databases, Pool};
use crate::error::AppError;
use crate::metrics::Metrics;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// State shared by every handler.
pub struct AppState {
    /// The two databases.
    pub db: Databases,
    /// Token and session checks.
    pub auth: Auth,
    /// The address actually bound (its port is what Host headers must carry).
    pub local_addr: SocketAddr,
    /// The resolved settings.
    pub settings: Settings,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The registry of instances.
    pub registry: actix::Addr<Registry>,
    /// What instances share (directory of running ones, tokens, transcripts).
    pub shared: Arc<Shared>,
    /// Browser sessions.
    pub sessions: crate::sessions::Sessions,
    /// One-time sign-in codes for the dashboard.
    pub login_codes: Arc<crate::sessions::LoginCodes>,
    /// Failed authentication per source network: tokens and session cookies.
    pub auth_failures: middleware::limiter::FailureLimiter,
    /// Failed trigger signatures per source network (counted apart, so that bad
    /// triggers never lock out a token holder).
    pub trigger_failures: middleware::limiter::FailureLimiter,
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(assets::index)
        .service(assets::static_file)
        .service(system::healthz)
        .service(system::metrics)
        .service(system::openapi)
        .service(system::session_status)
        .service(system::create_session)
        .service(system::delete_session)
        .service(system::delete_sessions)
        .service(system::create_login_link)
        .service(tasks::list)
        .service(tasks::create)
        .service(tasks::get)
        .service(tasks::update)
        .service(tasks::delete)
        .service(agents::list)
        .service(agents::create)
        .service(agents::get)
        .service(agents::update)
        .service(agents::delete)
        .service(agents::list_instances)
        .service(instances::create)
        .service(instances::list)
        .service(instances::show)
        .service(instances::update)
        .service(instances::remove)
        .service(instances::input)
        .service(instances::resize)
        .service(output::output)
        .service(messages::list)
        .service(messages::create)
        .service(messages::complete)
        .service(messages::batch)
        .service(sse::subscribe)
        .service(stream::stream)
        .service(tasks::run)
        .service(webhooks::list)
        .service(webhooks::create)
        .service(webhooks::get)
        .service(webhooks::update)
        .service(webhooks::delete)
        .service(webhooks::deliveries)
        .service(webhooks::redeliver)
        .service(triggers::trigger)
        .service(workspaces::changes)
        .service(workspaces::orphans)
        .service(workspaces::delete_orphan)
        .service(integrations::presets)
        .service(integrations::report)
        .service(integrations::resume)
        .service(approvals::list)
        .service(approvals::decide);
}

/// Runs blocking database work on the blocking thread pool with a pooled connection.
///
/// # Errors
/// Whatever `work` returns; a pool or thread failure as a 500.
pub async fn blocking<T, F>(pool: &Pool, work: F) -> Result<T, AppError>
where
    F: FnOnce(&mut rusqlite::Connection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    crate::db::run(pool, work).await
}

/// Moves task events into the global log after a task change. A failure is only
/// logged: the change is committed and its event stays queued for the next relay.
pub async fn relay_tasks(state: &AppState) {
    let shared = state.shared.clone();
    match web::block(move || shared.bus.relay_tasks()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "task events not relayed yet"),
        Err(e) => tracing::warn!(error = %e, "task events not relayed yet"),
    }
}

/// The answer for a request no route serves: 405 with `Allow` for a known path
/// asked with another method, otherwise 404.
///
/// # Errors
/// Always: the 405 or a 404 naming the method and path.
pub async fn route_not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, AppError> {
    let allowed = route::Routed::of(&req).pattern.map(|pattern| methods_of(&pattern)).unwrap_or_default();
    if allowed.is_empty() {
        return Err(AppError::NotFound(format!("no route for {} {}", req.method(), req.path())));
    }
    let allow = allowed.join(", ");
    Err(AppError::MethodNotAllowed { message: format!("{} {} takes only {allow}", req.method(), req.path()), allow })
}

/// The methods served at a route pattern, from the OpenAPI document (the page and
/// its files, which the document leaves out, take GET).
fn methods_of(pattern: &str) -> Vec<&'static str> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    use utoipa::OpenApi;
    static METHODS: OnceLock<HashMap<String, Vec<&'static str>>> = OnceLock::new();
    let methods = METHODS.get_or_init(|| {
        let doc = openapi::ApiDoc::openapi();
        let mut map: HashMap<String, Vec<&'static str>> = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let ops = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
            ];
            map.insert(path.clone(), ops.iter().filter(|(_, on)| *on).map(|(m, _)| *m).collect());
        }
        for page in ["/", "/static/{path:.*}"] {
            map.insert(page.to_owned(), vec!["GET"]);
        }
        map
    });
    methods.get(pattern).cloned().unwrap_or_default()
}
