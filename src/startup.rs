//! `Application`: prepares the data directory, the databases and the token, binds
//! the listener (port 0 allowed) and runs the HTTP server until SIGTERM/SIGINT.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Arbiter};

use actix_web::middleware::from_fn;
use actix_web::{dev::Server, web, App, HttpServer};

use crate::actors::registry::{Recover, Registry, Shutdown};
use crate::actors::{child_base_env, Directory, Shared};
use crate::auth::{Auth, AuthError, InstanceTokens};
use crate::config::Settings;
use crate::db::{Databases, DbError};
use crate::http::middleware::{guard::guard, observe::observe};
use crate::http::{self, json::query_error, AppState, MAX_BODY_BYTES};
use crate::metrics::Metrics;

const MINUTE: Duration = Duration::from_secs(60);
/// The file in the data directory that holds the running server's address.
pub const URL_FILE: &str = "url";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    /// The data directory is not safe to use.
    #[error(transparent)]
    UnsafeDataDir(#[from] crate::files::DataDirError),
    /// A database could not be opened or migrated.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The token could not be read or generated.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// Blocking start-up work failed to run.
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// The running service.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    /// The code of the printed sign-in link (none without authentication).
    login: Option<String>,
    db: Databases,
    registry: Addr<Registry>,
    shared: Arc<Shared>,
    /// The threads instance actors (and so every child's spawner) live on.
    instances: Vec<Arbiter>,
}

impl Application {
    /// Prepares storage and credentials and binds the listener; serving starts with
    /// [`Application::run_until_stopped`].
    ///
    /// # Errors
    /// See [`StartupError`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let data_dir = settings.data_dir.clone();
        let explicit =
            if settings.no_auth { Some(Auth::disabled()) } else { settings.token.clone().map(Auth::with_token) };
        crate::files::make_private();
        let (db, auth, sessions) = web::block(move || -> Result<_, StartupError> {
            create_data_dir(&data_dir)?;
            for path in crate::files::secure_data_dir(&data_dir)? {
                tracing::warn!(path = %path.display(), "was readable by other users; restricted to this user");
            }
            create_data_dir(&data_dir.join("transcripts"))?;
            let db = Databases::open(&data_dir)?;
            let auth = match explicit {
                Some(auth) => auth,
                None => Auth::from_data_dir(&data_dir)?,
            };
            let conn = db.agents.get().map_err(DbError::from)?;
            let sessions = crate::sessions::Sessions::load(&conn, auth.token())?;
            Ok((db, auth, sessions))
        })
        .await
        .map_err(|e| StartupError::Task(e.to_string()))??;
        let addr = settings.bind;
        let bind_error = |source| StartupError::Bind { addr, source };
        let listener = TcpListener::bind(settings.bind).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let login_codes = Arc::new(crate::sessions::LoginCodes::default());
        let login = if auth.enabled() { Some(login_codes.mint()?.0) } else { None };
        // Where `switchboard login-link` finds this server.
        let url_file = settings.data_dir.join(URL_FILE);
        if let Err(e) = std::fs::write(&url_file, format!("{}\n", base_url(local_addr))) {
            tracing::warn!(error = %e, path = %url_file.display(), "cannot record the server's address");
        }
        match crate::terminal::pty::raise_open_files_limit() {
            Ok(limit) => tracing::debug!(limit, "open files limit"),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
        }
        let data_dir = std::fs::canonicalize(&settings.data_dir).unwrap_or_else(|_| settings.data_dir.clone());
        let cgroups = if settings.cgroups {
            web::block(crate::isolation::Cgroups::detect).await.map_err(|e| StartupError::Task(e.to_string()))?
        } else {
            crate::isolation::Cgroups::default()
        };
        let shared = Arc::new(Shared {
            db: db.clone(),
            transcripts: settings.data_dir.join("transcripts"),
            transcript_max: settings.transcript_max,
            worktrees: settings.worktrees_dir.clone(),
            grace: Duration::from_secs(settings.shutdown_grace_secs),
            base_url: base_url(local_addr),
            tokens: InstanceTokens::default(),
            base_env: child_base_env(),
            directory: Directory::default(),
            message_wake: tokio::sync::broadcast::channel(1024).0,
            bus: crate::events::Bus::new(db.clone()),
            sessions: crate::terminal::pty::Sessions::default(),
            cgroups,
            tmp_root: data_dir.join("tmp"),
            data_dir,
            default_limits: settings.limits,
            port: local_addr.port(),
            running: crate::actors::Running::default(),
            hooks: crate::integration::Hooks::new(
                std::env::current_exe().unwrap_or_else(|_| "switchboard".into()),
                settings.approval_hold,
                settings.programs.clone(),
            ),
            spares: crate::actors::spares::Spares::new(settings.spare_helpers),
        });
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let instances: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
        let handles = instances.iter().map(Arbiter::handle).collect();
        let registry = Registry::new(shared.clone(), handles, settings.max_concurrent_instances).start();
        registry.send(Recover).await.map_err(|e| StartupError::Task(e.to_string()))?;
        prune_events_periodically(shared.clone(), settings.events_keep, settings.events_max_age);
        // Worktrees whose directories were removed by hand are forgotten by git.
        let pruning = shared.clone();
        actix_web::rt::spawn(async move {
            let _ = web::block(move || crate::http::workspaces::prune_all(&pruning)).await;
        });
        crate::webhooks::spawn(
            shared.clone(),
            crate::webhooks::DeliveryConfig {
                retry_schedule: settings.webhook_retry_schedule.clone(),
                timeout: settings.webhook_timeout,
            },
        );
        let limiter =
            |what| crate::http::middleware::limiter::FailureLimiter::new(settings.auth_max_failures, MINUTE, what);
        let (auth_failures, trigger_failures) = (limiter("authentication attempts"), limiter("trigger signatures"));
        let state = web::Data::new(AppState {
            db: db.clone(),
            auth,
            local_addr,
            settings,
            metrics: Metrics::new(),
            registry: registry.clone(),
            shared: shared.clone(),
            sessions,
            login_codes,
            auth_failures,
            trigger_failures,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .wrap(from_fn(crate::http::middleware::idempotency::idempotent))
                .wrap(from_fn(guard))
                .wrap(from_fn(observe))
                .configure(http::routes)
                .default_service(web::to(http::route_not_found))
        })
        .listen(listener)
        .map_err(bind_error)?
        .disable_signals()
        .shutdown_timeout(5)
        .run();
        Ok(Application { server, local_addr, login, db, registry, shared, instances })
    }

    /// The address actually bound.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The two start-up lines: where it listens, and the dashboard address with a
    /// one-time sign-in code (never the token: the address ends up in browser history).
    #[must_use]
    pub fn banner(&self) -> [String; 2] {
        let port = self.local_addr.port();
        let host = match self.local_addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let listen_host = match self.local_addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let fragment = self.login.as_ref().map(|code| format!("#login={code}")).unwrap_or_default();
        [
            format!("switchboard listening on http://{listen_host}:{port}"),
            format!("switchboard dashboard: http://{host}:{port}/{fragment}"),
        ]
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting work, finishes open
    /// requests, and folds the write-ahead logs into the databases.
    ///
    /// # Errors
    /// The server failed while running.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        for kind in [SignalKind::terminate(), SignalKind::interrupt()] {
            let handle = self.server.handle();
            let registry = self.registry.clone();
            let shared = self.shared.clone();
            let mut stream = signal(kind)?;
            actix_web::rt::spawn(async move {
                if stream.recv().await.is_some() {
                    tracing::info!("stop signal received; ending every instance");
                    let _ = registry.send(Shutdown).await;
                    shared.bus.stop();
                    tracing::info!("instances ended; stopping the HTTP server");
                    handle.stop(true).await;
                }
            });
        }
        self.server.await?;
        for arbiter in &self.instances {
            arbiter.stop();
        }
        let db = self.db;
        web::block(move || db.checkpoint()).await.map_err(std::io::Error::other)?;
        let shared = self.shared.clone();
        let _ = web::block(move || {
            shared.spares.close();
            shared.cgroups.release();
        })
        .await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Keeps the event log within its retention (at least `keep` events or `max_age`).
fn prune_events_periodically(shared: Arc<Shared>, keep: u64, max_age: Duration) {
    actix_web::rt::spawn(async move {
        loop {
            let pruned = crate::db::run(&shared.db.agents, move |conn| -> Result<usize, crate::db::DbError> {
                crate::db::idempotency::prune(conn)?;
                crate::db::deliveries::prune(conn, max_age)?;
                crate::db::triggers::prune(conn, max_age)?;
                crate::db::events::prune(conn, keep, max_age)
            })
            .await;
            match pruned {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "old events pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning events failed"),
            }
            actix_web::rt::time::sleep(Duration::from_secs(600)).await;
        }
    });
}

fn base_url(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
        std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{}", addr.port()),
        ip => format!("http://{ip}:{}", addr.port()),
    }
}

fn create_data_dir(path: &Path) -> Result<(), StartupError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StartupError::DataDir { path: path.display().to_string(), source })
}
