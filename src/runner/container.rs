//! The container runner: an instance's program in a container with a TTY, made,
//! attached, resized, signalled and removed through a Docker Engine API endpoint
//! (Docker, or Podman's compatible service), on this machine or another.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, ResizeContainerTTYOptionsBuilder,
};
use bollard::Docker;
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::io::AsyncWrite;

use super::{Exit, HostView};
use crate::domain::runner::ContainerRunner;
use crate::domain::settings::Limits;
use crate::isolation::Isolation;

/// The endpoint used when neither the agent nor `DOCKER_HOST` names one.
pub const DEFAULT_ENGINE: &str = "unix:///var/run/docker.sock";
/// Longest wait for one request to the engine (creating, starting, inspecting).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the engine's first answer (an engine that is not there).
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests that last as long as the container (its exit status): no timeout to speak of.
const LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Open files per process, and processes of its user, in a container whose agent
/// sets no `open_files`: set explicitly, because some engines' defaults are more
/// than their own runtime may grant (`setrlimit … operation not permitted`), and
/// kept below what engines commonly run with.
const DEFAULT_ULIMIT: u64 = 16384;
/// The label every container of an instance carries (its instance's id).
pub const LABEL: &str = "switchboard.instance";

/// What a container runs, and how.
pub struct Spec<'a> {
    pub instance: uuid::Uuid,
    pub agent: uuid::Uuid,
    pub runner: &'a ContainerRunner,
    pub argv: &'a [String],
    /// The variables the program gets (the image's own come first).
    pub env: Vec<String>,
    /// The working directory, mounted at its own path.
    pub workspace: &'a Path,
    pub rows: u16,
    pub cols: u16,
    pub limits: Limits,
    /// This server's binary, mounted read-only at its own path (for agent hooks).
    pub binary: Option<PathBuf>,
}

/// Why a container did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("container engine unreachable at {endpoint}: {why}")]
    Unreachable { endpoint: String, why: String },
    #[error("image {image:?} is not on the container engine at {endpoint} (the server pulls nothing: build or pull it there)")]
    NoImage { image: String, endpoint: String },
    #[error("container engine at {endpoint}: {why}")]
    Engine { endpoint: String, why: String },
}

/// A container of an instance, on its engine.
pub struct Container {
    docker: Docker,
    /// Set when this machine's kernel saw it reach its memory limit (`oom`).
    oom: std::sync::OnceLock<Arc<std::sync::atomic::AtomicBool>>,
    /// `switchboard-<instance id>`: what the engine knows it by.
    pub name: String,
    pub endpoint: String,
}

/// A started container: its TTY's two directions, and how its processes look from here.
pub struct Started {
    pub container: Arc<Container>,
    pub output: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    /// Its processes as this machine's kernel sees them (a local engine only).
    pub host: Option<HostView>,
    pub isolation: Isolation,
}

/// The endpoint an agent's runner names, else `DOCKER_HOST`, else the default socket.
#[must_use]
pub fn endpoint(runner: &ContainerRunner) -> String {
    runner
        .engine
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_ENGINE.to_owned())
}

/// The container's name for an instance.
#[must_use]
pub fn name(instance: uuid::Uuid) -> String {
    format!("switchboard-{instance}")
}

/// A client of the engine at `endpoint`.
///
/// # Errors
/// The endpoint's scheme is not one this build speaks.
pub fn connect(endpoint: &str) -> Result<Docker, StartError> {
    let unreachable =
        |e: bollard::errors::Error| StartError::Unreachable { endpoint: endpoint.to_owned(), why: e.to_string() };
    Ok(Docker::connect_with_host(endpoint).map_err(unreachable)?.with_timeout(REQUEST_TIMEOUT))
}

/// Makes, attaches and starts the container; removes it again when a step fails.
///
/// # Errors
/// The engine cannot be reached, the image is not there, or the engine refused.
pub async fn start(spec: Spec<'_>) -> Result<Started, StartError> {
    let endpoint = endpoint(spec.runner);
    let docker = connect(&endpoint)?;
    let engine = |e: bollard::errors::Error| StartError::Engine { endpoint: endpoint.clone(), why: e.to_string() };
    let ping = docker.clone().with_timeout(PING_TIMEOUT).ping().await;
    ping.map_err(|e| StartError::Unreachable { endpoint: endpoint.clone(), why: e.to_string() })?;
    match docker.inspect_image(&spec.runner.image).await {
        Ok(_) => {}
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
            return Err(StartError::NoImage { image: spec.runner.image.clone(), endpoint });
        }
        Err(e) => return Err(engine(e)),
    }
    let name = name(spec.instance);
    // A container left by a server that died before it could remove it.
    let _ = docker.remove_container(&name, Some(RemoveContainerOptionsBuilder::default().force(true).build())).await;
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker.create_container(Some(options), body(&spec)).await.map_err(engine)?;
    let container = Container { docker, oom: std::sync::OnceLock::new(), name, endpoint: endpoint.clone() };
    match attach_and_start(&container, &spec).await {
        Ok((output, input, host)) => {
            let isolation = isolation(spec.limits);
            Ok(Started { container: Arc::new(container), output, input, host, isolation })
        }
        Err(e) => {
            container.remove().await;
            Err(engine(e))
        }
    }
}

type Attached =
    (Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>, Pin<Box<dyn AsyncWrite + Send>>, Option<HostView>);

/// Attaches first (so no output is missed), then starts and sizes the TTY.
async fn attach_and_start(container: &Container, spec: &Spec<'_>) -> Result<Attached, bollard::errors::Error> {
    let docker = &container.docker;
    let options =
        AttachContainerOptionsBuilder::default().stream(true).stdin(true).stdout(true).stderr(true).logs(false).build();
    let attached = docker.attach_container(&container.name, Some(options)).await?;
    docker.start_container(&container.name, None::<bollard::query_parameters::StartContainerOptions>).await?;
    // The size was given at creation too (`console_size`); a program that exited
    // already has no terminal to size.
    if let Err(e) = container.resize(spec.rows, spec.cols).await {
        tracing::debug!(container = %container.name, error = %e, "the TTY was not sized");
    }
    // A program that exited already has no processes to see (and some engines
    // describe such a container in terms the client does not know).
    let inspected = docker.inspect_container(&container.name, None).await.ok();
    let id = inspected.as_ref().and_then(|i| i.id.clone()).unwrap_or_default();
    let pid =
        inspected.and_then(|i| i.state).and_then(|s| s.pid).and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0);
    let limited = spec.limits.memory_mb.is_some();
    let seen = match pid {
        Some(pid) => actix_web::rt::task::spawn_blocking(move || {
            let host = host_view(pid, &id)?;
            Some((limited.then(|| super::oom::watch(pid)).flatten(), host))
        })
        .await
        .ok()
        .flatten(),
        None => None,
    };
    let host = seen.map(|(oom, host)| {
        if let Some(oom) = oom {
            let _ = container.oom.set(oom);
        }
        host
    });
    let output =
        attached.output.map(|item| item.map(bollard::container::LogOutput::into_bytes).map_err(io::Error::other));
    Ok((Box::pin(output), attached.input, host))
}

/// The container's first process as this machine's `/proc` shows it, when the
/// engine runs here: the pid the engine reports must be in a cgroup named after
/// the container (a remote engine's pid means nothing here), and its terminal is
/// what its standard input is open on.
fn host_view(pid: i32, id: &str) -> Option<HostView> {
    if id.len() < 12 {
        return None;
    }
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    if !cgroups.contains(id) {
        return None;
    }
    let pts = std::fs::read_link(format!("/proc/{pid}/fd/0")).ok()?.to_string_lossy().into_owned();
    pts.starts_with("/dev/pts/").then_some(HostView { leader: pid, pts })
}

fn body(spec: &Spec<'_>) -> ContainerCreateBody {
    let workspace = spec.workspace.display().to_string();
    let mut binds = vec![format!("{workspace}:{workspace}")];
    binds.extend(
        spec.runner
            .mounts()
            .into_iter()
            .map(|m| format!("{}:{}{}", m.host, m.container, if m.read_only { ":ro" } else { "" })),
    );
    if let Some(binary) = &spec.binary {
        let path = binary.display().to_string();
        binds.push(format!("{path}:{path}:ro"));
    }
    let limits = spec.limits;
    let ulimit = |name: &str, value: u64| {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        ResourcesUlimits { name: Some(name.to_owned()), soft: Some(value), hard: Some(value) }
    };
    let host_config = HostConfig {
        binds: Some(binds),
        network_mode: spec.runner.network.clone(),
        memory: limits.memory_mb.and_then(|mb| i64::try_from(mb * 1024 * 1024).ok()),
        // The memory limit is the whole limit: no swap beyond it.
        memory_swap: limits.memory_mb.and_then(|mb| i64::try_from(mb * 1024 * 1024).ok()),
        nano_cpus: limits.cpu_percent.map(|p| i64::from(p) * 10_000_000),
        pids_limit: limits.pids.map(i64::from),
        // Set explicitly: some engines' defaults cannot be applied by an
        // unprivileged or nested runtime.
        ulimits: Some(vec![
            ulimit("nofile", limits.open_files.unwrap_or(DEFAULT_ULIMIT)),
            ulimit("nproc", DEFAULT_ULIMIT),
        ]),
        // An init as the first process passes the engine's signals on to the
        // program (a first process without handlers would ignore SIGHUP and SIGTERM).
        init: Some(true),
        console_size: Some(vec![usize::from(spec.rows), usize::from(spec.cols)]),
        ..HostConfig::default()
    };
    let labels = HashMap::from([
        (LABEL.to_owned(), spec.instance.to_string()),
        ("switchboard.agent".to_owned(), spec.agent.to_string()),
    ]);
    ContainerCreateBody {
        image: Some(spec.runner.image.clone()),
        // The agent's command exactly, whatever the image's entrypoint.
        entrypoint: Some(spec.argv.to_vec()),
        cmd: Some(Vec::new()),
        env: Some(spec.env.clone()),
        working_dir: Some(workspace),
        user: spec.runner.user.clone(),
        tty: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(false),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        labels: Some(labels),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    }
}

fn isolation(applied: Limits) -> Isolation {
    Isolation {
        containment: "container".to_owned(),
        limits: if applied.tree_wide().is_empty() && applied.open_files.is_none() { "none" } else { "container" }
            .to_owned(),
        sandbox: "container".to_owned(),
        applied,
        unenforced: Vec::new(),
    }
}

impl Container {
    /// Sets the TTY's size.
    ///
    /// # Errors
    /// The engine refused (the container is gone).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), bollard::errors::Error> {
        let options = ResizeContainerTTYOptionsBuilder::default().h(i32::from(rows)).w(i32::from(cols)).build();
        self.docker.resize_container_tty(&self.name, options).await
    }

    /// Sends a signal to its first process (`SIGHUP`, `SIGTERM`, `SIGKILL`); quiet
    /// when it is gone already.
    pub async fn signal(&self, signal: &str) {
        let options = KillContainerOptionsBuilder::default().signal(signal).build();
        if let Err(e) = self.docker.kill_container(&self.name, Some(options)).await {
            tracing::debug!(container = %self.name, signal, error = %e, "signal not delivered");
        }
    }

    /// Waits for it to exit: its exit code as the engine reports it (128 + n for
    /// a signal n).
    pub async fn wait(&self) -> Exit {
        let docker = self.docker.clone().with_timeout(LIFETIME);
        let mut waited = docker.wait_container(&self.name, None::<bollard::query_parameters::WaitContainerOptions>);
        match waited.next().await {
            Some(Ok(response)) => Exit { code: i32::try_from(response.status_code).ok(), signal: None },
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                Exit { code: i32::try_from(code).ok(), signal: None }
            }
            Some(Err(e)) => {
                tracing::warn!(container = %self.name, error = %e, "the container's exit status is unknown");
                Exit { code: None, signal: None }
            }
            None => Exit { code: None, signal: None },
        }
    }

    /// Whether the kernel ended a process of it for its memory limit (as the
    /// engine says, or as this machine's kernel told).
    pub async fn oom_killed(&self) -> bool {
        if self.oom.get().is_some_and(|seen| seen.load(std::sync::atomic::Ordering::Relaxed)) {
            return true;
        }
        match self.docker.inspect_container(&self.name, None).await {
            Ok(inspected) => inspected.state.and_then(|s| s.oom_killed).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Removes it (and what it wrote outside its mounts), stopping it first if it runs.
    pub async fn remove(&self) {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(&self.name, Some(options)).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => {
                tracing::warn!(container = %self.name, endpoint = %self.endpoint, error = %e, "cannot remove the container");
            }
        }
    }
}

/// Removes the container an instance had, when a server that died left it.
pub async fn remove_left(endpoint: String, instance: uuid::Uuid) {
    let Ok(docker) = connect(&endpoint) else { return };
    let container = Container { docker, oom: std::sync::OnceLock::new(), name: name(instance), endpoint };
    container.remove().await;
}
