//! A cgroup per instance: the whole process tree held (and ended) as one, its
//! limits enforced on all of it, its usage read from the kernel.
//!
//! The server finds its own cgroup in each hierarchy (`/proc/self/cgroup` and
//! `/proc/self/mountinfo`) and makes one directory of its own beneath it,
//! `switchboard-<pid>`, with one directory per instance inside. It never writes to
//! a cgroup it did not create. cgroup v2 is used beneath the server's own cgroup
//! when that is delegated to it (systemd's `trusted.delegate` mark, or the root of
//! a cgroup namespace, as in a container): the instance's processes, `cgroup.kill`
//! and CPU usage, plus the memory, pids and cpu controllers where the delegation
//! enabled them. Limits no v2 controller can hold use the cgroup v1 controller of
//! the same name where the host mounts one (hybrid hierarchies).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::domain::settings::Limits;

/// A cgroup v1 controller the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V1 {
    Memory,
    Pids,
    Cpu,
    Cpuacct,
}

impl V1 {
    const ALL: [V1; 4] = [V1::Memory, V1::Pids, V1::Cpu, V1::Cpuacct];

    fn name(self) -> &'static str {
        match self {
            V1::Memory => "memory",
            V1::Pids => "pids",
            V1::Cpu => "cpu",
            V1::Cpuacct => "cpuacct",
        }
    }
}

/// Where the server may make instance cgroups (each its own `switchboard-<pid>`).
#[derive(Debug, Default)]
pub struct Cgroups {
    /// The v2 directory, and the controllers its children get.
    v2: Option<(PathBuf, Vec<String>)>,
    /// The v1 directories, by controller.
    v1: Vec<(V1, PathBuf)>,
}

/// One instance's cgroups (one per hierarchy used).
#[derive(Debug)]
pub struct InstanceCgroup {
    /// The v2 directory, when there is one.
    v2: Option<PathBuf>,
    v2_controllers: Vec<String>,
    v1: Vec<(V1, PathBuf)>,
    /// How the limits are held: `cgroup-v2`, `cgroup-v1` or `none`.
    pub limits: &'static str,
    /// Limits asked for that no cgroup holds here.
    pub unheld: Vec<&'static str>,
}

/// What an instance's processes use, from the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Usage {
    /// Memory of all its processes (the cgroup's charge, page cache included; or
    /// the sum of their resident sets).
    pub memory_bytes: u64,
    /// CPU time of all its processes, ended ones included where a cgroup counts it.
    pub cpu_seconds: f64,
    /// Its processes (and threads, where a pids cgroup counts them).
    pub pids: u64,
}

/// A line of `/proc/self/mountinfo` for a cgroup hierarchy.
struct Mount {
    root: String,
    point: PathBuf,
    v2: bool,
    options: Vec<String>,
}

fn mounts() -> Vec<Mount> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let kind = right.next()?;
            let _source = right.next();
            let options = right.next().unwrap_or_default();
            let v2 = match kind {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(Mount {
                root: unescape(fields.get(3)?),
                point: PathBuf::from(unescape(fields.get(4)?)),
                v2,
                options: options.split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// mountinfo escapes spaces, tabs, newlines and backslashes as octal.
fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(n) = field.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of the memory cgroup process `pid` is in, and whether it is a
/// cgroup v1 hierarchy's (a container's, say).
#[must_use]
pub fn memory_cgroup_of(pid: i32) -> Option<(PathBuf, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mounts = mounts();
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            let mount = mounts.iter().find(|m| !m.v2 && m.options.iter().any(|o| o == "memory"))?;
            return Some((directory(mount, path)?, true));
        }
        if controllers.is_empty() {
            let mount = mounts.iter().find(|m| m.v2)?;
            let dir = directory(mount, path)?;
            return dir.join("memory.events").exists().then_some((dir, false));
        }
        None
    })
}

/// The directory of cgroup `path` (as in `/proc/self/cgroup`) under `mount`.
fn directory(mount: &Mount, path: &str) -> Option<PathBuf> {
    let inside = if mount.root == "/" { path } else { path.strip_prefix(mount.root.as_str())? };
    Some(mount.point.join(inside.trim_start_matches('/')))
}

/// Whether the server's own v2 cgroup is its to divide: delegated to it, or the
/// root of its cgroup namespace (nothing else manages the tree it sees).
fn delegated(path: &str, dir: &Path) -> bool {
    if path == "/" {
        return true;
    }
    ["trusted.delegate", "user.delegate"].iter().any(|name| xattr_is_one(dir, name))
}

#[allow(unsafe_code)] // getxattr(2): nix has no wrapper.
fn xattr_is_one(dir: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(path), Ok(name)) = (std::ffi::CString::new(dir.as_os_str().as_bytes()), std::ffi::CString::new(name))
    else {
        return false;
    };
    let mut value = [0u8; 8];
    // SAFETY: both strings are NUL-terminated and the buffer is as long as said.
    let n = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    n == 1 && value[0] == b'1'
}

impl Cgroups {
    /// Finds where this server may make cgroups, and makes its own directories
    /// there (`switchboard-<pid>`); removes those of servers that are gone.
    #[must_use]
    pub fn detect() -> Cgroups {
        let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else { return Cgroups::default() };
        let mounts = mounts();
        let name = format!("switchboard-{}", std::process::id());
        let mut found = Cgroups::default();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if id == "0" && controllers.is_empty() {
                let Some(dir) = mounts.iter().find(|m| m.v2).and_then(|m| directory(m, path)) else { continue };
                if !delegated(path, &dir) {
                    tracing::info!(cgroup = %dir.display(), "the server's cgroup v2 is not delegated to it; not using it");
                    continue;
                }
                sweep_gone(&dir);
                let base = dir.join(&name);
                if let Err(e) = make_dir(&base) {
                    tracing::info!(cgroup = %base.display(), error = %e, "cannot make a cgroup v2 directory");
                    continue;
                }
                let available = read(&base.join("cgroup.controllers")).unwrap_or_default();
                let wanted: Vec<String> = available
                    .split_whitespace()
                    .filter(|c| ["memory", "pids", "cpu"].contains(c))
                    .map(str::to_owned)
                    .collect();
                let enable: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
                let controllers = if wanted.is_empty()
                    || std::fs::write(base.join("cgroup.subtree_control"), enable.join(" ")).is_ok()
                {
                    wanted
                } else {
                    Vec::new()
                };
                found.v2 = Some((base, controllers));
                continue;
            }
            for controller in V1::ALL {
                if !controllers.split(',').any(|c| c == controller.name()) {
                    continue;
                }
                let mount = mounts.iter().find(|m| !m.v2 && m.options.iter().any(|o| o == controller.name()));
                let Some(dir) = mount.and_then(|m| directory(m, path)) else { continue };
                sweep_gone(&dir);
                let base = dir.join(&name);
                match make_dir(&base) {
                    Ok(()) => found.v1.push((controller, base)),
                    Err(e) => tracing::info!(cgroup = %base.display(), error = %e, "cannot make a cgroup v1 directory"),
                }
            }
        }
        tracing::info!(
            v2 = ?found.v2.as_ref().map(|(p, c)| (p.display().to_string(), c.join(","))),
            v1 = ?found.v1.iter().map(|(c, _)| c.name()).collect::<Vec<_>>(),
            "instance cgroups"
        );
        found
    }

    /// Removes this server's own directories (once its instances ended).
    pub fn release(&self) {
        for dir in self.v2.iter().map(|(d, _)| d).chain(self.v1.iter().map(|(_, d)| d)) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten().filter(|e| e.path().is_dir()) {
                    remove_dir(&entry.path());
                }
            }
            remove_dir(dir);
        }
    }

    /// Whether instances can get a cgroup at all.
    #[must_use]
    pub fn available(&self) -> bool {
        self.v2.is_some() || !self.v1.is_empty()
    }

    /// Makes an instance's cgroups with its limits. Blocking (a few directory
    /// creations and writes).
    ///
    /// # Errors
    /// No hierarchy is available, or a directory or limit cannot be written (what
    /// was made is removed again).
    pub fn create(&self, instance: uuid::Uuid, limits: &Limits) -> io::Result<InstanceCgroup> {
        let mut made =
            InstanceCgroup { v2: None, v2_controllers: Vec::new(), v1: Vec::new(), limits: "none", unheld: Vec::new() };
        let result = self.fill(&mut made, instance, limits);
        match result {
            Ok(()) => Ok(made),
            Err(e) => {
                made.remove();
                Err(e)
            }
        }
    }

    fn fill(&self, made: &mut InstanceCgroup, instance: uuid::Uuid, limits: &Limits) -> io::Result<()> {
        let name = instance.to_string();
        let asked = limits.tree_wide();
        if let Some((base, controllers)) = &self.v2 {
            let dir = base.join(&name);
            make_dir(&dir)?;
            made.v2 = Some(dir);
            made.v2_controllers.clone_from(controllers);
        }
        let mut v1_wanted: Vec<V1> = Vec::new();
        for limit in &asked {
            let controller = v2_controller(limit);
            if !made.v2_controllers.iter().any(|c| c == controller) {
                if let Some((c, _)) = self.v1.iter().find(|(c, _)| c.name() == controller) {
                    v1_wanted.push(*c);
                }
            }
        }
        if made.v2.is_none() {
            // Without v2, a v1 hierarchy holds the processes and counts what they use.
            for c in [V1::Pids, V1::Memory, V1::Cpuacct] {
                if self.v1.iter().any(|(have, _)| *have == c) && !v1_wanted.contains(&c) {
                    v1_wanted.push(c);
                }
            }
        }
        for controller in v1_wanted {
            let Some((_, base)) = self.v1.iter().find(|(c, _)| *c == controller) else { continue };
            let dir = base.join(&name);
            make_dir(&dir)?;
            made.v1.push((controller, dir));
        }
        if made.v2.is_none() && made.v1.is_empty() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no cgroup hierarchy is available"));
        }
        let mut via_v2 = false;
        let mut via_v1 = false;
        for limit in asked {
            let controller = v2_controller(limit);
            let held = if made.v2_controllers.iter().any(|c| c == controller) {
                let dir = made.v2.as_deref().unwrap_or(Path::new("/"));
                write_v2_limit(dir, limit, limits)?;
                via_v2 = true;
                true
            } else if let Some((_, dir)) = made.v1.iter().find(|(c, _)| c.name() == controller) {
                write_v1_limit(dir, limit, limits)?;
                via_v1 = true;
                true
            } else {
                false
            };
            if !held {
                made.unheld.push(limit);
            }
        }
        made.limits = if via_v2 {
            "cgroup-v2"
        } else if via_v1 {
            "cgroup-v1"
        } else {
            "none"
        };
        Ok(())
    }
}

fn v2_controller(limit: &str) -> &'static str {
    match limit {
        "memory_mb" | "memory" => "memory",
        "pids" => "pids",
        _ => "cpu",
    }
}

const CPU_PERIOD_US: u64 = 100_000;

fn write_v2_limit(dir: &Path, limit: &str, limits: &Limits) -> io::Result<()> {
    match limit {
        "memory_mb" => {
            let bytes = limits.memory_mb.unwrap_or(0) << 20;
            write(&dir.join("memory.max"), &bytes.to_string())?;
            // No swapping past the limit, where swap is accounted.
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            Ok(())
        }
        "pids" => write(&dir.join("pids.max"), &limits.pids.unwrap_or(0).to_string()),
        _ => {
            let quota = u64::from(limits.cpu_percent.unwrap_or(100)) * CPU_PERIOD_US / 100;
            write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))
        }
    }
}

fn write_v1_limit(dir: &Path, limit: &str, limits: &Limits) -> io::Result<()> {
    match limit {
        "memory_mb" => {
            let bytes = (limits.memory_mb.unwrap_or(0) << 20).to_string();
            write(&dir.join("memory.limit_in_bytes"), &bytes)?;
            // Memory and swap together, where swap is accounted (after the memory limit).
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                let _ = std::fs::write(memsw, &bytes);
            }
            Ok(())
        }
        "pids" => write(&dir.join("pids.max"), &limits.pids.unwrap_or(0).to_string()),
        _ => {
            let quota = u64::from(limits.cpu_percent.unwrap_or(100)) * CPU_PERIOD_US / 100;
            write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
            write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())
        }
    }
}

impl InstanceCgroup {
    /// The `cgroup.procs` files the instance's first process joins (before it
    /// starts anything), one per v1 hierarchy.
    #[must_use]
    pub fn join_files(&self) -> Vec<PathBuf> {
        self.v1.iter().map(|(_, d)| d.join("cgroup.procs")).collect()
    }

    /// The cgroup v2 directory, which the instance's processes are started in.
    #[must_use]
    pub fn v2_dir(&self) -> Option<&Path> {
        self.v2.as_deref()
    }

    /// The directory that lists every process of the instance.
    fn members(&self) -> Option<&Path> {
        self.v2.as_deref().or_else(|| self.v1.first().map(|(_, d)| d.as_path()))
    }

    fn v1_dir(&self, controller: V1) -> Option<&Path> {
        self.v1.iter().find(|(c, _)| *c == controller).map(|(_, d)| d.as_path())
    }

    fn memory_dir(&self) -> Option<(&Path, bool)> {
        if self.v2_controllers.iter().any(|c| c == "memory") {
            return self.v2.as_deref().map(|d| (d, true));
        }
        self.v1_dir(V1::Memory).map(|d| (d, false))
    }

    /// The instance's live processes.
    #[must_use]
    pub fn processes(&self) -> Vec<i32> {
        self.members()
            .and_then(|d| read(&d.join("cgroup.procs")).ok())
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kills every process of the instance at once (v2 `cgroup.kill`), or each
    /// until none is left (v1). Blocking; returns whether none is left.
    pub fn kill(&self) -> bool {
        if let Some(dir) = &self.v2 {
            if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                return self.wait_empty(Duration::from_secs(2));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.processes();
            if pids.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                tracing::warn!(?pids, "processes survive SIGKILL");
                return false;
            }
            for pid in pids {
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_empty(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.processes().is_empty() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// How many of its processes the kernel's OOM killer ended for its memory limit.
    #[must_use]
    pub fn oom_kills(&self) -> u64 {
        let Some((dir, v2)) = self.memory_dir() else { return 0 };
        let file = if v2 { "memory.events" } else { "memory.oom_control" };
        read(&dir.join(file)).ok().and_then(|text| field(&text, "oom_kill")).unwrap_or(0)
    }

    /// What the instance uses now.
    #[must_use]
    pub fn usage(&self) -> Usage {
        let processes = self.processes();
        let memory_bytes = match self.memory_dir() {
            Some((dir, true)) => read_number(&dir.join("memory.current")),
            Some((dir, false)) => read_number(&dir.join("memory.usage_in_bytes")),
            None => None,
        }
        .unwrap_or_else(|| processes.iter().filter_map(|p| crate::terminal::procfs::resident_bytes(*p)).sum());
        #[allow(clippy::cast_precision_loss)] // microseconds of CPU: far below 2^52.
        let cpu_seconds = match (&self.v2, self.v1_dir(V1::Cpuacct)) {
            (Some(dir), _) => {
                read(&dir.join("cpu.stat")).ok().and_then(|t| field(&t, "usage_usec")).map(|us| us as f64 / 1e6)
            }
            (None, Some(dir)) => read_number(&dir.join("cpuacct.usage")).map(|ns| ns as f64 / 1e9),
            (None, None) => None,
        }
        .unwrap_or(0.0);
        let pids = self
            .v2_controllers
            .iter()
            .any(|c| c == "pids")
            .then(|| self.v2.as_deref().and_then(|d| read_number(&d.join("pids.current"))))
            .flatten()
            .or_else(|| self.v1_dir(V1::Pids).and_then(|d| read_number(&d.join("pids.current"))))
            .unwrap_or(processes.len() as u64);
        Usage { memory_bytes, cpu_seconds, pids }
    }

    /// Removes the directories (once their processes are gone; retried briefly,
    /// as the kernel frees an emptied cgroup a moment after its last process).
    pub fn remove(&self) {
        for dir in self.v2.iter().chain(self.v1.iter().map(|(_, d)| d)) {
            remove_dir(dir);
        }
    }
}

fn remove_dir(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            // Busy while its last processes are being freed; anything else is final.
            Err(e) if e.raw_os_error() != Some(libc::EBUSY) || Instant::now() >= deadline => {
                tracing::warn!(cgroup = %dir.display(), error = %e, "cannot remove an instance's cgroup");
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Removes the `switchboard-<pid>` directories of servers that are gone (after
/// killing anything left in them: a server killed with SIGKILL leaves its
/// instances' cgroups behind).
fn sweep_gone(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("switchboard-")).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 || signal::kill(Pid::from_raw(pid), None).is_ok() {
            continue;
        }
        let base = entry.path();
        if let Ok(instances) = std::fs::read_dir(&base) {
            for instance in instances.flatten().filter(|e| e.path().is_dir()) {
                let path = instance.path();
                let _ = std::fs::write(path.join("cgroup.kill"), "1");
                if let Ok(text) = read(&path.join("cgroup.procs")) {
                    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
                remove_dir(&path);
            }
        }
        remove_dir(&base);
    }
}

fn make_dir(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

fn read(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
}

fn read_number(path: &Path) -> Option<u64> {
    read(path).ok()?.trim().parse().ok()
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The number after `name ` on a line of a flat-keyed cgroup file.
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_fields_and_escapes_parse() {
        assert_eq!(field("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), Some(3));
        assert_eq!(field("low 0\noom 1\noom_kill 2\n", "oom"), Some(1));
        assert_eq!(field("usage_usec 1500\n", "oom_kill"), None);
        assert_eq!(unescape(r"/a\040b"), "/a b");
        let mount = Mount { root: "/docker".into(), point: "/sys/fs/cgroup/memory".into(), v2: false, options: vec![] };
        assert_eq!(directory(&mount, "/docker/x"), Some(PathBuf::from("/sys/fs/cgroup/memory/x")));
        assert_eq!(directory(&mount, "/other"), None);
    }
}
