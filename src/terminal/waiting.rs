//! Knowing when a program waits for the user, without its help.
//!
//! The kernel says so: some thread of the terminal's foreground process group
//! sleeps in `read` on the terminal, or in `select`/`poll`/`epoll` watching it,
//! and no thread of it is running. The caller adds the quiet period (`idle_ms`
//! without output) and, failing the kernel signal, the agent's prompt patterns.

use crate::terminal::procfs::{self, Syscall};

/// The kernel's view of the foreground process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Blocked on the terminal: the name of the call (`read`, `select`, `poll`, `epoll`).
    Waiting(&'static str),
    /// Running, sleeping, or blocked on something other than the terminal.
    Busy,
}

/// The system calls that wait for input, by number (as `/proc/*/syscall` shows them).
#[cfg(target_arch = "x86_64")]
mod nr {
    use libc::{
        SYS_epoll_pwait, SYS_epoll_pwait2, SYS_epoll_wait, SYS_poll, SYS_ppoll, SYS_pread64, SYS_pselect6, SYS_read,
        SYS_readv, SYS_select,
    };
    pub const READ: &[i64] = &[SYS_read, SYS_pread64, SYS_readv];
    pub const POLL: &[i64] = &[SYS_poll, SYS_ppoll];
    pub const SELECT: &[i64] = &[SYS_select, SYS_pselect6];
    pub const EPOLL: &[i64] = &[SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2];
}

/// The system calls that wait for input (aarch64 has only the newer calls).
#[cfg(target_arch = "aarch64")]
mod nr {
    use libc::{SYS_epoll_pwait, SYS_epoll_pwait2, SYS_ppoll, SYS_pread64, SYS_pselect6, SYS_read, SYS_readv};
    pub const READ: &[i64] = &[SYS_read, SYS_pread64, SYS_readv];
    pub const POLL: &[i64] = &[SYS_ppoll];
    pub const SELECT: &[i64] = &[SYS_pselect6];
    pub const EPOLL: &[i64] = &[SYS_epoll_pwait, SYS_epoll_pwait2];
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod nr {
    pub const READ: &[i64] = &[];
    pub const POLL: &[i64] = &[];
    pub const SELECT: &[i64] = &[];
    pub const EPOLL: &[i64] = &[];
}

/// Asks the kernel whether the program on the terminal `pts`, whose session
/// leader is `leader`, waits for input. `members` lists the instance's processes
/// when they are known cheaply (its cgroup, or its helper's descendants); it is
/// asked only when the foreground group's leader alone cannot tell, and without
/// them the whole of `/proc` is searched for the foreground group.
#[must_use]
pub fn kernel(leader: i32, pts: &str, members: impl FnOnce() -> Option<Vec<i32>>) -> Verdict {
    let Some(session) = procfs::stat(leader) else { return Verdict::Busy };
    let tpgid = session.tpgid;
    if tpgid <= 0 {
        return Verdict::Busy;
    }
    // The group's leader first: usually it is the program at the prompt (often the
    // session leader itself, whose state was just read). Only when it is not (a
    // shell running `git commit` that runs an editor, all in one group) are the
    // other members looked for.
    let group = if tpgid == leader { Some(session) } else { procfs::stat(tpgid) };
    let group = group.filter(|s| s.pgrp == tpgid && s.state != 'Z');
    let group_leader = group.map(|s| s.pid);
    let mut waiting = None;
    if let Some(process) = group {
        match threads_state(process, pts) {
            ThreadsState::Running => return Verdict::Busy,
            ThreadsState::Waiting(call) => return Verdict::Waiting(call),
            ThreadsState::Asleep => {}
        }
    }
    let candidates = members().unwrap_or_else(procfs::pids);
    let others = candidates.into_iter().filter(|pid| Some(*pid) != group_leader);
    let stat = |pid: i32| if pid == leader { Some(session) } else { procfs::stat(pid) };
    for member in others.filter_map(stat).filter(|s| s.pgrp == tpgid && s.state != 'Z') {
        match threads_state(member, pts) {
            ThreadsState::Running => return Verdict::Busy,
            ThreadsState::Waiting(call) => waiting = waiting.or(Some(call)),
            ThreadsState::Asleep => {}
        }
    }
    waiting.map_or(Verdict::Busy, Verdict::Waiting)
}

enum ThreadsState {
    /// Some thread is on a CPU.
    Running,
    /// No thread runs and one sleeps on the terminal.
    Waiting(&'static str),
    /// Every thread sleeps on something else.
    Asleep,
}

fn threads_state(process: procfs::Stat, pts: &str) -> ThreadsState {
    let pid = process.pid;
    // Most programs at a prompt have one thread, whose id is the pid: no need to
    // list the process's tasks.
    let tids = if process.threads == 1 { vec![pid] } else { procfs::threads(pid) };
    let mut waiting = None;
    for tid in tids {
        match procfs::syscall(pid, tid) {
            Some(Syscall::Running) => return ThreadsState::Running,
            Some(Syscall::Blocked { nr, args }) if waiting.is_none() => waiting = on_terminal(pid, nr, args, pts),
            _ => {}
        }
    }
    waiting.map_or(ThreadsState::Asleep, ThreadsState::Waiting)
}

fn is_terminal(pid: i32, fd: u64, pts: &str) -> bool {
    procfs::fd_target(pid, fd).is_some_and(|t| t == pts || t == "/dev/tty")
}

fn on_terminal(pid: i32, nr: i64, args: [u64; 3], pts: &str) -> Option<&'static str> {
    if nr::READ.contains(&nr) {
        return is_terminal(pid, args[0], pts).then_some("read");
    }
    if nr::SELECT.contains(&nr) {
        return select_watches(pid, args[0], args[1], pts).then_some("select");
    }
    if nr::POLL.contains(&nr) {
        return poll_watches(pid, args[0], args[1], pts).then_some("poll");
    }
    if nr::EPOLL.contains(&nr) {
        return procfs::epoll_targets(pid, args[0]).into_iter().any(|fd| is_terminal(pid, fd, pts)).then_some("epoll");
    }
    None
}

/// `select(nfds, readfds, …)`: reads the fd_set from the process's memory; when
/// that is not allowed, any descriptor below `nfds` on the terminal counts.
fn select_watches(pid: i32, nfds: u64, readfds: u64, pts: &str) -> bool {
    let nfds = nfds.min(1024);
    let Some(set) = (readfds != 0).then(|| procfs::read_memory(pid, readfds, nfds.div_ceil(8) as usize)).flatten()
    else {
        return (0..nfds).any(|fd| is_terminal(pid, fd, pts));
    };
    (0..nfds).filter(|fd| set[(fd / 8) as usize] & (1 << (fd % 8)) != 0).any(|fd| is_terminal(pid, fd, pts))
}

/// `poll(fds, nfds, …)`: reads the pollfd array (8 bytes each, fd first).
fn poll_watches(pid: i32, fds: u64, nfds: u64, pts: &str) -> bool {
    let nfds = nfds.min(256) as usize;
    let Some(raw) = procfs::read_memory(pid, fds, nfds * 8) else { return false };
    raw.chunks_exact(8)
        .filter_map(|c| u64::try_from(i32::from_ne_bytes([c[0], c[1], c[2], c[3]])).ok())
        .any(|fd| is_terminal(pid, fd, pts))
}

/// Whether the last screen line matches one of the prompt patterns; the pattern.
#[must_use]
pub fn matching_pattern<'a>(patterns: &'a [regex::Regex], last_line: &str) -> Option<&'a regex::Regex> {
    patterns.iter().find(|p| p.is_match(last_line))
}
