//! Knowing that a container's memory limit ended it where its engine does not
//! say so: Podman with runc on a cgroup v1 memory hierarchy reports
//! `OOMKilled: false` for a container whose process the kernel killed at its
//! limit, and the container's cgroup is gone before its exit is known. On such a
//! host, a local engine's container is watched through cgroup v1's OOM
//! notification (an eventfd registered in `cgroup.event_control`, which reads
//! the cgroup and changes nothing of it). On cgroup v2 the engine reads
//! `memory.events` and says so itself.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::eventfd::{EfdFlags, EventFd};

/// Starts watching the v1 memory cgroup of process `pid` (a container's first
/// process); the flag turns true at its first OOM. `None` where there is nothing
/// to watch (cgroup v2, no memory controller, or no permission).
#[must_use]
pub fn watch(pid: i32) -> Option<Arc<AtomicBool>> {
    let (dir, v1) = crate::isolation::cgroup::memory_cgroup_of(pid)?;
    if !v1 {
        return None;
    }
    let events = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).ok()?;
    let control = File::open(dir.join("memory.oom_control")).ok()?;
    let registration = format!("{} {}", events.as_fd().as_raw_fd(), control.as_raw_fd());
    std::fs::write(dir.join("cgroup.event_control"), registration).ok()?;
    let seen = Arc::new(AtomicBool::new(false));
    let flag = seen.clone();
    let watcher = std::thread::Builder::new().name("oom-watch".into()).spawn(move || {
        let _control = control;
        // The eventfd is signalled at each OOM in the cgroup, and once more when
        // the cgroup is removed (then its directory is gone).
        while events.read().is_ok() && dir.exists() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    watcher.ok().map(|_| seen)
}
