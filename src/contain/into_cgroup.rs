//! Starting the namespace's init inside the instance's cgroup v2, rather than moving
//! a process there afterwards.
#![allow(unsafe_code)] // clone3(2), which has no wrapper: the helper is single-threaded.

use std::io::Write;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::unistd::{fork, ForkResult, Pid};

/// The cgroup v2 directory init starts in, and its `cgroup.procs` for kernels
/// without `CLONE_INTO_CGROUP` (before 5.7).
pub(super) struct CgroupV2 {
    dir: OwnedFd,
    procs: std::fs::File,
}

impl CgroupV2 {
    pub(super) fn open(dir: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(dir)?;
        let procs = std::fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"))?;
        Ok(CgroupV2 { dir: opened.into(), procs })
    }
}

/// `struct clone_args` of clone3(2), up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(2), the child starting in the cgroup `into`: clone3 with
/// `CLONE_INTO_CGROUP` puts it there as it is made, where moving a process
/// (writing `cgroup.procs`) waits for an RCU grace period — 4 to 20 ms here, most
/// of an instance's create time. Without kernel support, this process joins the
/// cgroup first and forks.
///
/// # Safety
/// As for fork(2): the calling process is single-threaded.
pub(super) unsafe fn fork_into(into: Option<&CgroupV2>) -> nix::Result<ForkResult> {
    use std::os::fd::AsRawFd;
    let Some(into) = into else { return fork() };
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: u64::try_from(into.dir.as_raw_fd()).unwrap_or(u64::MAX),
        ..CloneArgs::default()
    };
    let made = libc::syscall(libc::SYS_clone3, &raw mut args, std::mem::size_of::<CloneArgs>());
    match made {
        0 => Ok(ForkResult::Child),
        -1 => match Errno::last() {
            // No clone3, or none that knows the flag: join, then fork.
            Errno::ENOSYS | Errno::EINVAL | Errno::E2BIG => {
                (&into.procs)
                    .write_all(nix::unistd::getpid().to_string().as_bytes())
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
                fork()
            }
            errno => Err(errno),
        },
        pid => Ok(ForkResult::Parent { child: Pid::from_raw(i32::try_from(pid).map_err(|_| Errno::EOVERFLOW)?) }),
    }
}
