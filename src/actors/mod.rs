//! The actors: a [`registry::Registry`] that owns the set of instances, the
//! limits and the queue, and one [`instance::InstanceActor`] per running
//! instance that owns its PTY, its process group and its status.

pub mod instance;
pub mod registry;
pub mod spares;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use actix::Addr;
use uuid::Uuid;

use crate::auth::InstanceTokens;
use crate::db::Databases;
use crate::events::Bus;
use instance::{End, Ending, InstanceActor};

/// What every instance needs from the server.
pub struct Shared {
    pub db: Databases,
    /// `DATA_DIR/transcripts`.
    pub transcripts: PathBuf,
    /// Most bytes of one transcript kept on disk (`None`: unlimited).
    pub transcript_max: Option<u64>,
    /// Where worktrees are made (`worktrees_dir`).
    pub worktrees: PathBuf,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// `SWITCHBOARD_URL` for children.
    pub base_url: String,
    pub tokens: InstanceTokens,
    /// The server's environment without its own `SWITCHBOARD_*` settings.
    pub base_env: BTreeMap<String, String>,
    pub directory: Directory,
    /// Woken with an instance id whenever one of its messages is created or delivered.
    pub message_wake: tokio::sync::broadcast::Sender<Uuid>,
    /// The event bus.
    pub bus: Bus,
    /// The sessions of running instances.
    pub sessions: crate::terminal::pty::Sessions,
    /// Where instance cgroups can be made.
    pub cgroups: crate::isolation::Cgroups,
    /// The data directory, absolute (hidden from sandboxed instances).
    pub data_dir: PathBuf,
    /// `DATA_DIR/tmp`: sandboxed instances' private temporary directories.
    pub tmp_root: PathBuf,
    /// Limits for agents that set none (`[limits]`).
    pub default_limits: crate::domain::settings::Limits,
    /// The port this server listens on (a sandbox without network may reach it).
    pub port: u16,
    /// What running instances use: their cgroup or their helper's pid.
    pub running: Running,
    /// Agents' own reports: the hook command, held permission requests.
    pub hooks: crate::integration::Hooks,
    /// Containment helpers made ready ahead of need.
    pub spares: spares::Spares,
}

impl Shared {
    /// Where isolation is prepared for an instance or a spare helper.
    #[must_use]
    pub fn isolation_host(&self) -> crate::isolation::Host<'_> {
        crate::isolation::Host {
            cgroups: &self.cgroups,
            data_dir: &self.data_dir,
            tmp_root: &self.tmp_root,
            server_port: self.port,
        }
    }
}

/// Running instances' cgroups (or helper pids, without one), for their usage.
#[derive(Default)]
pub struct Running(RwLock<HashMap<Uuid, Held>>);

/// A running instance's cgroup, its helper's pid, and its agent.
type Held = (Option<Arc<crate::isolation::InstanceCgroup>>, i32, Uuid);

impl Running {
    fn insert(&self, id: Uuid, cgroup: Option<Arc<crate::isolation::InstanceCgroup>>, pid: i32, agent: Uuid) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).insert(id, (cgroup, pid, agent));
    }

    fn remove(&self, id: Uuid) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// What a running instance uses now (`None` when it does not run). Blocking:
    /// a few small reads of `/sys/fs/cgroup` or `/proc`.
    #[must_use]
    pub fn usage(&self, id: Uuid) -> Option<crate::isolation::Usage> {
        let (cgroup, pid, _) = self.0.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()?;
        Some(match cgroup {
            Some(cgroup) => cgroup.usage(),
            None => crate::isolation::usage_from_proc(pid),
        })
    }

    /// The running instances, with their agents.
    #[must_use]
    pub fn ids(&self) -> Vec<(Uuid, Uuid)> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).iter().map(|(id, held)| (*id, held.2)).collect()
    }
}

impl Shared {
    /// The transcript file of an instance.
    #[must_use]
    pub fn transcript(&self, id: Uuid) -> PathBuf {
        self.transcripts.join(format!("{id}.log"))
    }

    /// Removes an instance's files (transcript, last screen and private temporary
    /// directory). Blocking.
    ///
    /// # Errors
    /// A file that exists but cannot be removed.
    pub fn remove_files(&self, id: Uuid) -> std::io::Result<()> {
        for path in [self.transcript(id), self.final_screen(id)] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        crate::isolation::remove_tmpdir(&self.tmp_root, id);
        Ok(())
    }

    /// The last screen of an ended instance (`cols rows` line, then escape sequences).
    #[must_use]
    pub fn final_screen(&self, id: Uuid) -> PathBuf {
        self.transcripts.join(format!("{id}.screen"))
    }
}

/// Running instances by id, readable from any HTTP worker without a round trip
/// through the registry (only the registry writes it).
#[derive(Clone, Default)]
pub struct Directory(Arc<RwLock<HashMap<Uuid, Addr<InstanceActor>>>>);

impl Directory {
    /// The actor of a running instance.
    #[must_use]
    pub fn get(&self, id: Uuid) -> Option<Addr<InstanceActor>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }

    fn insert(&self, id: Uuid, addr: Addr<InstanceActor>) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).insert(id, addr);
    }

    fn remove(&self, id: Uuid) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// Ends a running instance through its actor: the future resolves once its
    /// process group is gone and its final status is stored. `None` if it does not
    /// run. Used by the registry and, to save the hop through it, by HTTP handlers.
    pub fn end(&self, id: Uuid, how: Ending) -> Option<impl Future<Output = ()>> {
        let addr = self.get(id)?;
        Some(async move {
            if let Ok(done) = addr.send(End(how)).await {
                let _ = done.await;
            }
        })
    }

    /// How many instances run.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether none runs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The server's environment for children: its own `SWITCHBOARD_*` variables
/// (the token among them) are never passed on.
#[must_use]
pub fn child_base_env() -> BTreeMap<String, String> {
    std::env::vars().filter(|(k, _)| !k.starts_with("SWITCHBOARD_")).collect()
}
