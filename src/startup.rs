//! `Application`: prepares the data directory, the databases and the token, binds
//! the listener (port 0 allowed) and runs the HTTP server until SIGTERM/SIGINT.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use actix_web::middleware::from_fn;
use actix_web::{dev::Server, web, App, HttpServer};

use crate::auth::{Auth, AuthError};
use crate::config::Settings;
use crate::db::{Databases, DbError};
use crate::http::{
    self, guard::guard, json::query_error, observe::observe, AppState, MAX_BODY_BYTES,
};
use crate::metrics::Metrics;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    /// A database could not be opened or migrated.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The token could not be read or generated.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Blocking start-up work failed to run.
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// The running service.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    token: Option<String>,
    db: Databases,
}

impl Application {
    /// Prepares storage and credentials and binds the listener; serving starts with
    /// [`Application::run_until_stopped`].
    ///
    /// # Errors
    /// See [`StartupError`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let data_dir = settings.data_dir.clone();
        let explicit = if settings.no_auth {
            Some(Auth::disabled())
        } else {
            settings.token.clone().map(Auth::with_token)
        };
        let (db, auth) = web::block(move || -> Result<_, StartupError> {
            create_data_dir(&data_dir)?;
            let db = Databases::open(&data_dir)?;
            let auth = match explicit {
                Some(auth) => auth,
                None => Auth::from_data_dir(&data_dir)?,
            };
            Ok((db, auth))
        })
        .await
        .map_err(|e| StartupError::Task(e.to_string()))??;
        let addr = settings.bind;
        let bind_error = |source| StartupError::Bind { addr, source };
        let listener = TcpListener::bind(settings.bind).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let token = auth.token().map(str::to_owned);
        let state = web::Data::new(AppState {
            db: db.clone(),
            auth,
            local_addr,
            settings,
            metrics: Metrics::new(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::QueryConfig::default().error_handler(query_error))
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
        Ok(Application {
            server,
            local_addr,
            token,
            db,
        })
    }

    /// The address actually bound.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The two start-up lines: where it listens, and the dashboard address with the token.
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
        let fragment = self
            .token
            .as_ref()
            .map(|t| format!("#token={t}"))
            .unwrap_or_default();
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
            let mut stream = signal(kind)?;
            actix_web::rt::spawn(async move {
                if stream.recv().await.is_some() {
                    tracing::info!("stop signal received; shutting down");
                    handle.stop(true).await;
                }
            });
        }
        self.server.await?;
        let db = self.db;
        web::block(move || db.checkpoint())
            .await
            .map_err(std::io::Error::other)?;
        tracing::info!("stopped");
        Ok(())
    }
}

fn create_data_dir(path: &Path) -> Result<(), StartupError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StartupError::DataDir {
            path: path.display().to_string(),
            source,
        })
}
