//! Small readers of Linux `/proc`: process status, open files, the syscall a
//! thread sleeps in, and environment markers. Every function tolerates processes
//! that vanish while being read (it then reports nothing for them).

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;

/// Fields of `/proc/PID/stat` that Switchboard uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// `R` running, `S` sleeping, `Z` zombie, …
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Foreground process group of the controlling terminal.
    pub tpgid: i32,
    /// How many threads it has (when 1, its only thread's id is its pid).
    pub threads: i32,
}

/// Reads `/proc/PID/stat`.
#[must_use]
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(text: &str) -> Option<Stat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let mut num = || -> Option<i32> { fields.next()?.parse().ok() };
    let (ppid, pgrp, session, _tty) = (num()?, num()?, num()?, num()?);
    let tpgid = num()?;
    // flags, minflt, cminflt, majflt, cmajflt, utime, stime, cutime, cstime,
    // priority, nice; then num_threads.
    let threads = fields.nth(11).and_then(|n| n.parse().ok()).unwrap_or(0);
    Some(Stat { pid, state, ppid, pgrp, session, tpgid, threads })
}

/// Resident memory of a process, in bytes (`/proc/PID/statm`).
#[must_use]
pub fn resident_bytes(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(4096)
}

/// CPU time a process used so far (user and system), in clock ticks.
#[must_use]
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (for [`cpu_ticks`]).
#[must_use]
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(100)
}

/// A process and all its descendants (`/proc/PID/task/TID/children`).
#[must_use]
pub fn tree(pid: i32) -> Vec<i32> {
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() && found.len() < 100_000 {
        let parent = found[i];
        for tid in threads(parent) {
            if let Ok(text) = fs::read_to_string(format!("/proc/{parent}/task/{tid}/children")) {
                found.extend(text.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
            }
        }
        i += 1;
    }
    found
}

/// Every process id now in `/proc`.
#[must_use]
pub fn pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Thread ids of a process.
#[must_use]
pub fn threads(pid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// What a process's file descriptor points at (`/dev/pts/3`, `pipe:[…]`, …).
#[must_use]
pub fn fd_target(pid: i32, fd: u64) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok().map(|p| p.to_string_lossy().into_owned())
}

/// A thread's current system call: `None` when it is running or unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// The thread is on a CPU.
    Running,
    /// Blocked in call `nr` with these first three arguments.
    Blocked { nr: i64, args: [u64; 3] },
    /// Not in a system call (or unknown).
    Other,
}

/// Reads `/proc/PID/task/TID/syscall`.
#[must_use]
pub fn syscall(pid: i32, tid: i32) -> Option<Syscall> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    Some(parse_syscall(&text))
}

fn parse_syscall(text: &str) -> Syscall {
    let mut parts = text.split_whitespace();
    match parts.next() {
        Some("running") => Syscall::Running,
        Some(nr) => {
            let Ok(nr) = nr.parse::<i64>() else { return Syscall::Other };
            if nr < 0 {
                return Syscall::Other;
            }
            let mut args = [0u64; 3];
            for slot in &mut args {
                *slot =
                    parts.next().and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok()).unwrap_or(0);
            }
            Syscall::Blocked { nr, args }
        }
        None => Syscall::Other,
    }
}

/// The file descriptors an epoll instance watches (`tfd:` lines of its fdinfo).
#[must_use]
pub fn epoll_targets(pid: i32, epfd: u64) -> Vec<u64> {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/fdinfo/{epfd}")) else { return Vec::new() };
    text.lines()
        .filter_map(|l| l.strip_prefix("tfd:"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Reads `len` bytes of a process's memory at `addr` (pollfd arrays, fd_sets).
#[must_use]
pub fn read_memory(pid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let file = fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, addr).ok()?;
    Some(buf)
}

/// The value of `name` in a process's environment, if it has one.
#[must_use]
pub fn env_var(pid: i32, name: &str) -> Option<String> {
    let mut raw = Vec::new();
    fs::File::open(format!("/proc/{pid}/environ")).ok()?.read_to_end(&mut raw).ok()?;
    raw.split(|b| *b == 0).find_map(|entry| {
        let rest = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(rest).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let s = parse_stat("42 (a (b) c) S 1 42 40 34816 42 4194560 0 0 0 0 1 2 0 0 20 0 3 0").expect("parses");
        assert_eq!(s, Stat { pid: 42, state: 'S', ppid: 1, pgrp: 42, session: 40, tpgid: 42, threads: 3 });
        // A line cut short still gives what it has; the thread count is unknown.
        let short = parse_stat("42 (a (b) c) S 1 42 40 34816 42 4194560 0 0").expect("parses");
        assert_eq!(short.threads, 0);
        assert!(stat(std::process::id() as i32).is_some());
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = i32::try_from(sleeper.id()).expect("pid");
        let read = stat(pid).expect("the sleeper");
        assert_eq!((read.threads, threads(pid)), (1, vec![pid]), "one thread, whose id is the pid");
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }

    #[test]
    fn syscall_lines_parse() {
        assert_eq!(parse_syscall("running\n"), Syscall::Running);
        assert_eq!(
            parse_syscall("0 0x3 0x7ffd 0x1 0x0 0x0 0x0 0x7ffd 0x7f\n"),
            Syscall::Blocked { nr: 0, args: [3, 0x7ffd, 1] }
        );
        assert_eq!(parse_syscall("-1 0x7ffd 0x7f\n"), Syscall::Other);
    }
}
