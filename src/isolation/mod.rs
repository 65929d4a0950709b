//! Isolation of an instance: how its process tree is held (`containment`), how
//! its resource limits are enforced (`limits`), and its filesystem and network
//! sandbox (`sandbox`). The server prepares all three before the start
//! ([`prepare`]); the containment helper ([`crate::contain`]) joins the cgroups,
//! sets the rlimits and applies the sandbox before it starts the command, and
//! reports what the kernel granted.

pub mod cgroup;
pub mod sandbox;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use cgroup::{Cgroups, InstanceCgroup, Usage};

use crate::domain::settings::Limits;

/// How an instance is isolated, as the instance JSON reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Isolation {
    /// How its process tree is held and ended: `cgroup` (a cgroup of its own,
    /// ended as a whole; a PID namespace too where the kernel gives one), `pidns`
    /// (a PID namespace of its own), or `session` (its session and environment
    /// marker only).
    pub containment: String,
    /// How its limits are enforced: `cgroup-v2`, `cgroup-v1`, `rlimit` (per
    /// process only), or `none` (none asked for, or none could be held).
    pub limits: String,
    /// `landlock` or `none`.
    pub sandbox: String,
    /// The limits in force (the agent's, else the server's defaults).
    pub applied: Limits,
    /// Limits asked for that nothing on this host could enforce.
    pub unenforced: Vec<String>,
}

/// What the helper does before it starts the command (passed as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HelperPlan {
    /// `cgroup.procs` files the helper joins (cgroup v1 hierarchies).
    pub cgroups: Vec<PathBuf>,
    /// The cgroup v2 directory the namespace's init starts in (`clone3` with
    /// `CLONE_INTO_CGROUP`: moving a running process costs milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<PathBuf>,
    /// `RLIMIT_NOFILE`.
    pub open_files: Option<u64>,
    /// `RLIMIT_DATA`, in bytes: the memory limit where no cgroup holds it.
    pub data_bytes: Option<u64>,
    pub sandbox: Option<sandbox::Plan>,
}

/// What the kernel granted a helper, as it says once ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Granted {
    pub pid_namespace: bool,
    pub sandbox: bool,
}

/// An instance's isolation, prepared before its start.
pub struct Prepared {
    pub plan: HelperPlan,
    pub cgroup: Option<Arc<InstanceCgroup>>,
    pub applied: Limits,
    /// How the limits are held, before the helper's report.
    limits: &'static str,
    unenforced: Vec<String>,
    /// The private temporary directory (set as `TMPDIR`), when sandboxed.
    pub tmpdir: Option<PathBuf>,
}

impl Prepared {
    /// Nothing prepared: a runner that isolates by other means (a container).
    #[must_use]
    pub fn nothing() -> Prepared {
        Prepared {
            plan: HelperPlan::default(),
            cgroup: None,
            applied: Limits::default(),
            limits: "none",
            unenforced: Vec::new(),
            tmpdir: None,
        }
    }

    /// The report, once the helper said what the kernel granted.
    #[must_use]
    pub fn report(&self, granted: Granted) -> Isolation {
        let containment = if self.cgroup.is_some() {
            "cgroup"
        } else if granted.pid_namespace {
            "pidns"
        } else {
            "session"
        };
        Isolation {
            containment: containment.to_owned(),
            limits: self.limits.to_owned(),
            sandbox: if granted.sandbox { "landlock" } else { "none" }.to_owned(),
            applied: self.applied,
            unenforced: self.unenforced.clone(),
        }
    }
}

/// What [`prepare`] needs to know about the instance.
pub struct Instance<'a> {
    pub id: uuid::Uuid,
    pub limits: Limits,
    pub sandbox: &'a crate::domain::settings::Sandbox,
    pub workspace: &'a Path,
    pub repository: Option<&'a Path>,
    pub home: Option<&'a Path>,
}

/// Where the server keeps what isolation needs.
pub struct Host<'a> {
    pub cgroups: &'a Cgroups,
    pub data_dir: &'a Path,
    /// `DATA_DIR/tmp`: instances' private temporary directories.
    pub tmp_root: &'a Path,
    pub server_port: u16,
}

/// The private temporary directory of an instance.
#[must_use]
pub fn tmpdir(tmp_root: &Path, id: uuid::Uuid) -> PathBuf {
    tmp_root.join(id.to_string())
}

/// Makes the instance's cgroup (with its limits) and, when sandboxed, its
/// temporary directory, and plans the rest for the helper. Blocking. The terminal
/// is added to the sandbox once it exists ([`HelperPlan::allow_terminal`]).
///
/// # Errors
/// The temporary directory cannot be made.
pub fn prepare(host: &Host<'_>, instance: &Instance<'_>) -> std::io::Result<Prepared> {
    let limits = instance.limits;
    let mut held: &'static str = "none";
    let mut unenforced: Vec<String> = Vec::new();
    let mut cgroup = None;
    if host.cgroups.available() {
        match host.cgroups.create(instance.id, &limits) {
            Ok(made) => {
                held = made.limits;
                unenforced = made.unheld.iter().map(|s| (*s).to_owned()).collect();
                cgroup = Some(Arc::new(made));
            }
            Err(e) => tracing::warn!(instance = %instance.id, error = %e, "cannot make the instance's cgroup"),
        }
    } else {
        unenforced = limits.tree_wide().into_iter().map(str::to_owned).collect();
    }
    // Where no cgroup holds memory, RLIMIT_DATA does, per process (RLIMIT_AS would
    // break runtimes such as V8 that reserve large address ranges up front).
    let data_bytes = if unenforced.iter().any(|l| l == "memory_mb") {
        unenforced.retain(|l| l != "memory_mb");
        if held == "none" {
            held = "rlimit";
        }
        limits.memory_mb.map(|mb| mb << 20)
    } else {
        None
    };
    if limits.open_files.is_some() && held == "none" {
        held = "rlimit";
    }
    let mut tmpdir = None;
    let sandbox = if instance.sandbox.enabled {
        let dir = self::tmpdir(host.tmp_root, instance.id);
        std::fs::create_dir_all(&dir)?;
        let made = sandbox::plan(
            instance.sandbox,
            &sandbox::Where {
                data_dir: host.data_dir,
                workspace: instance.workspace,
                repository: instance.repository,
                tmpdir: &dir,
                pts: None,
                home: instance.home,
                server_port: host.server_port,
            },
        );
        let plan = match made {
            Ok(plan) => plan,
            Err(why) => {
                let _ = std::fs::remove_dir(&dir);
                if let Some(cgroup) = &cgroup {
                    cgroup.remove();
                }
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
            }
        };
        tmpdir = Some(dir);
        Some(plan)
    } else {
        None
    };
    let plan = HelperPlan {
        cgroups: cgroup.as_ref().map(|c: &Arc<InstanceCgroup>| c.join_files()).unwrap_or_default(),
        into: cgroup.as_ref().and_then(|c| c.v2_dir().map(Path::to_path_buf)),
        open_files: limits.open_files,
        data_bytes,
        sandbox,
    };
    Ok(Prepared { plan, cgroup, applied: limits, limits: held, unenforced, tmpdir })
}

impl HelperPlan {
    /// Lets the sandbox use the instance's own terminal.
    pub fn allow_terminal(&mut self, pts: &str) {
        if let Some(sandbox) = &mut self.sandbox {
            sandbox.devices.push(PathBuf::from(pts));
        }
    }
}

/// Removes an instance's private temporary directory (when it is deleted). Blocking.
pub fn remove_tmpdir(tmp_root: &Path, id: uuid::Uuid) {
    let dir = tmpdir(tmp_root, id);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove an instance's temporary directory");
        }
        _ => {}
    }
}

/// What the processes of an instance without a cgroup use, from `/proc` (its
/// helper and everything beneath it: orphans are adopted by the namespace's init).
#[must_use]
pub fn usage_from_proc(helper: i32) -> Usage {
    let tree: Vec<i32> = crate::terminal::procfs::tree(helper);
    let memory_bytes = tree.iter().filter_map(|p| crate::terminal::procfs::resident_bytes(*p)).sum();
    let ticks: u64 = tree.iter().filter_map(|p| crate::terminal::procfs::cpu_ticks(*p)).sum();
    #[allow(clippy::cast_precision_loss)] // clock ticks: far below 2^52.
    let cpu_seconds = ticks as f64 / crate::terminal::procfs::ticks_per_second() as f64;
    Usage { memory_bytes, cpu_seconds, pids: tree.len() as u64 }
}
