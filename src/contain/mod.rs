//! Containment: every process an instance starts lives in a PID namespace of the
//! instance's own, so nothing it starts can outlive it — not a background job, not a
//! process that called `setsid`, cleared its environment or ignores SIGHUP and
//! SIGTERM. When the namespace's first process ends, the kernel kills everything
//! left in it.
//!
//! The server starts a helper as `switchboard-contain --report-fd 2 --session
//! SERVER_PID --umask U [--plan JSON]` (spawned with `posix_spawn`, the report
//! channel, a socket, as its standard error) on a terminal of its own. That helper
//! makes its session with the terminal as its controlling one and arms its death
//! signal ([`own_session`]), then:
//! 1. enters a new PID namespace (a user namespace too when not privileged);
//! 2. forks the namespace's init (PID 1), which says it is ready (`ready
//!    pid_namespace|none landlock|none`: what the kernel granted) and forks the
//!    command's process (PID 2), which waits for the command on the report channel
//!    ([`Command`], JSON, up to the server's end of writing) and runs it — the
//!    command is not PID 1 itself, because PID 1 ignores every signal it has no
//!    handler for, and Ctrl-C must still interrupt it;
//! 3. waits for init, and ends the way the command ended (same exit code, or
//!    killed by the same signal), so the server sees the command's status.
//!
//! Everything but the command is made before the command is known, so the server
//! lets a helper get ready while it stores the instance's row, or keeps one ready
//! ahead of need (`actors::spares`), and sends the command only once the row is
//! stored. The channel's end with no command ends the helper with nothing run.
//!
//! Init reaps orphans, passes SIGHUP and SIGTERM on to every process of the
//! namespace, and exits as soon as the command does. It dies with the helper
//! (`PR_SET_PDEATHSIG`), and the helper dies with the server, so a SIGKILLed server
//! leaves nothing behind either. After its readiness, the report channel says
//! why the command could not start (`err ERRNO`, `cwd ERRNO` for a working
//! directory it cannot enter), or closes with nothing more as the command's program
//! is executed (close-on-exec): the server's start still fails for a missing
//! program, and waits for no other process to say the command runs. A required
//! sandbox the kernel cannot give is `deny REASON`, before any readiness.
//!
//! Before all that, with `--plan JSON` ([`crate::isolation::HelperPlan`]), the
//! helper joins the instance's cgroups (so everything it starts is in them from the
//! first instruction), sets the rlimits, and applies the sandbox after entering
//! the namespace.
#![allow(unsafe_code)] // fork(2): the helper is single-threaded (it runs before any runtime starts).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

mod command;
mod into_cgroup;
pub use command::Command;
use command::{receive, run_command};
use into_cgroup::{fork_into, CgroupV2};

pub use crate::isolation::Granted;
use crate::isolation::HelperPlan;

/// The hidden first argument that makes the binary this helper.
pub const SUBCOMMAND: &str = "__contain";

/// How an instance's processes are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containment {
    /// A PID namespace of its own: nothing it starts outlives it.
    PidNamespace,
    /// The kernel refused a namespace: its session and the environment marker only.
    None,
}

impl Containment {
    /// The stored and serialized form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Containment::PidNamespace => "pid_namespace",
            Containment::None => "none",
        }
    }
}

/// Parses a helper's report once its channel closed: what the kernel granted
/// (from its readiness, first in the report or `ready` when read before), or the
/// error that kept the command from starting (`cwd`: its working directory).
///
/// # Errors
/// The command could not be started (its errno, or the reason a required sandbox
/// is missing), or the report is garbled.
pub fn parse_report(report: &str, cwd: &Path, ready: Option<Granted>) -> std::io::Result<Granted> {
    let garbled = || std::io::Error::other(format!("the instance's helper reported {report:?}"));
    // Its readiness comes first, unless it was read on its own (`ready`, a spare's).
    let (ready, rest) = match report.split_once('\n') {
        Some((first, rest)) if first.starts_with("ready ") => (parse_ready(first), rest),
        _ => (ready, report),
    };
    let mut words = rest.trim().splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        // Nothing after readiness: the command's program was executed.
        (Some(""), None, None) => ready.ok_or_else(garbled),
        (Some("err"), Some(errno), None) => {
            Err(std::io::Error::from_raw_os_error(errno.parse().unwrap_or(Errno::EIO as i32)))
        }
        (Some("cwd"), Some(errno), None) => {
            let e = std::io::Error::from_raw_os_error(errno.parse().unwrap_or(Errno::EIO as i32));
            Err(std::io::Error::new(e.kind(), format!("its working directory {}: {e}", cwd.display())))
        }
        (Some("deny"), Some(first), rest) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("sandbox_unavailable: {first}{}", rest.map(|r| format!(" {r}")).unwrap_or_default()),
        )),
        _ => Err(garbled()),
    }
}

/// Parses init's readiness (`ready pid_namespace|none landlock|none`): what the
/// kernel granted, known before the command is sent.
#[must_use]
pub fn parse_ready(line: &str) -> Option<Granted> {
    let mut words = line.trim().splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some("ready"), Some(ns), sandbox) => granted(ns, sandbox),
        _ => None,
    }
}

fn granted(ns: &str, sandbox: Option<&str>) -> Option<Granted> {
    let pid_namespace = match ns {
        "pid_namespace" => true,
        "none" => false,
        _ => return None,
    };
    Some(Granted { pid_namespace, sandbox: sandbox == Some("landlock") })
}

/// Signals the helper and init leave to the command (terminal job control) or
/// handle themselves.
const IGNORED_BY_HELPER: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGHUP,
    Signal::SIGTERM,
];

/// Runs the helper when `args` ask for it (`args[1] == SUBCOMMAND`); `None` otherwise.
#[must_use]
pub fn main_if_requested(args: &[OsString]) -> Option<ExitCode> {
    if args.get(1).map(OsString::as_os_str) != Some(SUBCOMMAND.as_ref()) {
        return None;
    }
    Some(match helper(&args[2..]) {
        Ok(never) => match never {},
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::from(127)
        }
    })
}

enum Never {}

fn helper(args: &[OsString]) -> Result<Never, String> {
    let usage =
        || format!("usage: switchboard {SUBCOMMAND} --report-fd N --session PARENT_PID --umask OCTAL [--plan JSON]");
    let mut rest = args;
    let (mut report_fd, mut session, mut umask, mut plan) = (None, None, None, HelperPlan::default());
    while let [flag, value, more @ ..] = rest {
        let text = value.to_str().ok_or_else(usage)?;
        match flag.to_str() {
            Some("--report-fd") => report_fd = Some(text.parse::<RawFd>().map_err(|_| "bad --report-fd")?),
            Some("--session") => session = Some(text.parse::<i32>().map_err(|_| "bad --session")?),
            Some("--umask") => umask = Some(u32::from_str_radix(text, 8).map_err(|_| "bad --umask")?),
            Some("--plan") => plan = serde_json::from_str(text).map_err(|e| format!("bad --plan: {e}"))?,
            _ => return Err(usage()),
        }
        rest = more;
    }
    let (true, Some(report_fd), Some(parent), Some(umask)) = (rest.is_empty(), report_fd, session, umask) else {
        return Err(usage());
    };
    // SAFETY: the server passed this descriptor, open, for this helper alone.
    let report = own_session(unsafe { OwnedFd::from_raw_fd(report_fd) }, Pid::from_raw(parent), umask)?;
    for sig in IGNORED_BY_HELPER {
        // SAFETY: SIG_IGN installs no handler code.
        unsafe { signal::signal(sig, SigHandler::SigIgn) }.map_err(|e| e.to_string())?;
    }
    // The cgroups first, so that everything started from here is held and counted:
    // the v1 hierarchies' are joined now; init starts in the v2 one (opened before
    // the sandbox, which may forbid opening it later).
    for file in &plan.cgroups {
        std::fs::write(file, nix::unistd::getpid().to_string())
            .map_err(|e| format!("cannot join the cgroup {}: {e}", file.display()))?;
    }
    let into = match &plan.into {
        Some(dir) => Some(CgroupV2::open(dir).map_err(|e| format!("cannot open the cgroup {}: {e}", dir.display()))?),
        None => None,
    };
    set_rlimits(&plan);
    let containment = enter_namespace();
    let sandboxed = match &plan.sandbox {
        None => false,
        Some(sandbox) => match crate::isolation::sandbox::apply(sandbox) {
            Ok(true) => true,
            outcome if sandbox.required => {
                let why = outcome.err().unwrap_or_else(|| "this kernel has no Landlock".to_owned());
                report_and_exit(report, &format!("deny {why}"));
            }
            Ok(false) => false,
            Err(e) => {
                eprintln!("switchboard: the sandbox could not be applied, running without it: {e}");
                false
            }
        },
    };
    let (status_read, status_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let helper = nix::unistd::getpid();
    // SAFETY: this process is single-threaded (the helper runs before any runtime).
    match unsafe { fork_into(into.as_ref()) }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop((status_read, into));
            init(Init { helper, containment, sandboxed }, report, status_write)
        }
        ForkResult::Parent { child } => {
            drop((report, status_write));
            let own = wait_for(child);
            let mut text = String::new();
            let _ = std::fs::File::from(status_read).read_to_string(&mut text);
            end_like(parse_status(&text).unwrap_or(own))
        }
    }
}

/// What the server's spawn leaves to the helper (it uses `posix_spawn`, which
/// neither copies the server's memory nor runs code of the server's in the child):
/// a session of its own whose controlling terminal is standard input, death with
/// the thread of `parent` that spawned it, and the umask. The report channel may come
/// as standard error: it moves to a descriptor of its own, and standard error
/// becomes the terminal too.
fn own_session(report: OwnedFd, parent: Pid, umask: u32) -> Result<OwnedFd, String> {
    use std::os::fd::AsRawFd;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    if nix::unistd::getppid() != parent {
        // The server died before the death signal was armed: do not outlive it.
        std::process::exit(127);
    }
    let report = if report.as_raw_fd() == libc::STDERR_FILENO {
        let moved = nix::fcntl::fcntl(&report, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)).map_err(|e| e.to_string())?;
        // SAFETY: fcntl just made this descriptor, for nothing else.
        let moved = unsafe { OwnedFd::from_raw_fd(moved) };
        // SAFETY: dup2 onto standard error, replacing the pipe's other number.
        if unsafe { libc::dup2(libc::STDOUT_FILENO, libc::STDERR_FILENO) } < 0 {
            return Err(format!("dup2: {}", Errno::last()));
        }
        std::mem::forget(report);
        moved
    } else {
        report
    };
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: TIOCSCTTY takes an int argument; standard input is the terminal.
    if unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) } < 0 {
        return Err(format!("cannot take the terminal: {}", Errno::last()));
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    Ok(report)
}

/// Sets the per-process limits of the plan (inherited by everything started).
fn set_rlimits(plan: &HelperPlan) {
    use nix::sys::resource::{setrlimit, Resource};
    if let Some(n) = plan.open_files {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, n, n) {
            eprintln!("switchboard: cannot limit open files to {n}: {e}");
        }
    }
    if let Some(bytes) = plan.data_bytes {
        if let Err(e) = setrlimit(Resource::RLIMIT_DATA, bytes, bytes) {
            eprintln!("switchboard: cannot limit memory to {bytes} bytes: {e}");
        }
    }
}

/// A PID namespace, with a user namespace when this user may not make one alone.
fn enter_namespace() -> Containment {
    if unshare(CloneFlags::CLONE_NEWPID).is_ok() {
        return Containment::PidNamespace;
    }
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID).is_err() {
        return Containment::None;
    }
    // The same user and group inside as outside, so files keep their owners.
    let mapped = std::fs::write("/proc/self/setgroups", "deny")
        .and_then(|()| std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")))
        .and_then(|()| std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")));
    if mapped.is_ok() {
        Containment::PidNamespace
    } else {
        Containment::None
    }
}

/// What init knows of the helper's work.
#[derive(Clone, Copy)]
struct Init {
    helper: Pid,
    containment: Containment,
    sandboxed: bool,
}

/// The namespace's first process: waits for the command, starts it, reaps, passes
/// on SIGHUP and SIGTERM, and exits when the command does (taking the namespace
/// with it).
fn init(of: Init, report: OwnedFd, status: OwnedFd) -> ! {
    let Init { helper, containment, sandboxed } = of;
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if helper_gone(helper, containment, &status) {
        // The helper died before the death signal was armed: do not outlive it.
        std::process::exit(127);
    }
    let mut waited = SigSet::empty();
    for sig in [Signal::SIGCHLD, Signal::SIGHUP, Signal::SIGTERM] {
        waited.add(sig);
    }
    let _ = signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None);
    // Ready: what it was granted, known before any command (a spare's start is
    // stored with it before the command is sent).
    let sandbox = if sandboxed { "landlock" } else { "none" };
    let ready = format!("ready {} {sandbox}\n", containment.as_str());
    if nix::unistd::write(&report, ready.as_bytes()).is_err() {
        // The server is gone or gave the start up.
        std::process::exit(127);
    }
    // The command's own process, made now: it takes the command when the server
    // sends it, and runs it. SAFETY: init is single-threaded.
    let command = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(status);
            command_process(report)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => report_and_exit(report, &format!("err {}", e as i32)),
    };
    // From here only the command's process holds the channel; it closes as the
    // command's program is executed (close-on-exec), which the server takes for
    // the start.
    drop(report);
    loop {
        let Ok(sig) = waited.wait() else { continue };
        match sig {
            Signal::SIGHUP | Signal::SIGTERM => {
                // Everything in the namespace (init itself excepted); without a
                // namespace, the command (its group got the signal already).
                let target = if containment == Containment::PidNamespace { Pid::from_raw(-1) } else { command };
                let _ = signal::kill(target, sig);
            }
            _ => {
                while let Ok(reaped) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    match reaped {
                        WaitStatus::StillAlive => break,
                        WaitStatus::Exited(pid, code) if pid == command => finish(&status_line('e', code), &status),
                        WaitStatus::Signaled(pid, sig, _) if pid == command => {
                            finish(&status_line('s', sig as i32), &status);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Whether the helper is gone. Inside a namespace the parent has no pid here
/// (getppid answers 0), so ask the status pipe: its read end, which only the helper
/// holds, is closed once the helper is gone.
fn helper_gone(helper: Pid, containment: Containment, status: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    if containment == Containment::None {
        return nix::unistd::getppid() != helper;
    }
    let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(status), PollFlags::POLLOUT)];
    poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP))
}

fn status_line(kind: char, n: i32) -> String {
    format!("{kind} {n}\n")
}

fn finish(line: &str, status: &OwnedFd) -> ! {
    let _ = nix::unistd::write(status, line.as_bytes());
    std::process::exit(0);
}

/// The command's process: takes the command, then runs it (see [`run_command`]);
/// nothing when the server gives the start up (the channel's end, no command).
fn command_process(report: OwnedFd) -> ! {
    // Closed by the exec alone, whatever number it came on.
    let _ = nix::fcntl::fcntl(&report, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    match receive(&report) {
        None => std::process::exit(127),
        Some(Err(errno)) => report_and_exit(report, &format!("err {}", errno as i32)),
        Some(Ok(exec)) => run_command(&exec, &report),
    }
}

fn report_and_exit(report: OwnedFd, line: &str) -> ! {
    let _ = std::fs::File::from(report).write_all(format!("{line}\n").as_bytes());
    std::process::exit(127);
}

fn wait_for(child: Pid) -> WaitStatus {
    loop {
        match waitpid(child, None) {
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return status,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return WaitStatus::Exited(child, 127),
        }
    }
}

fn parse_status(text: &str) -> Option<WaitStatus> {
    let (kind, n) = text.trim().split_once(' ')?;
    let n: i32 = n.parse().ok()?;
    match kind {
        "e" => Some(WaitStatus::Exited(Pid::from_raw(0), n)),
        "s" => Some(WaitStatus::Signaled(Pid::from_raw(0), Signal::try_from(n).ok()?, false)),
        _ => None,
    }
}

/// Ends this process the way the command ended.
fn end_like(status: WaitStatus) -> ! {
    if let WaitStatus::Signaled(_, sig, _) = status {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        // SAFETY: SIG_DFL installs no handler code.
        let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
        let mut only = SigSet::empty();
        only.add(sig);
        let _ = signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
        let _ = signal::raise(sig);
        std::process::exit(128 + sig as i32);
    }
    match status {
        WaitStatus::Exited(_, code) => std::process::exit(code),
        _ => std::process::exit(127),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_and_statuses_parse() {
        let granted = |pid_namespace, sandbox| Some(Granted { pid_namespace, sandbox });
        let cwd = Path::new("/srv/project");
        // Ready, then the channel's end: the program was executed.
        assert_eq!(parse_report("ready pid_namespace none\n", cwd, None).ok(), granted(true, false));
        assert_eq!(parse_report("ready none landlock\n", cwd, None).ok(), granted(false, true));
        // Its readiness read before (a spare's).
        assert_eq!(parse_report("", cwd, granted(true, false)).ok(), granted(true, false));
        assert!(parse_report("", cwd, None).is_err(), "nothing said at all");
        let denied = parse_report("deny this kernel has no Landlock\n", cwd, None).expect_err("denied");
        assert_eq!(denied.to_string(), "sandbox_unavailable: this kernel has no Landlock");
        let missing = parse_report("ready pid_namespace none\nerr 2\n", cwd, None).expect_err("missing");
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        let gone = parse_report("cwd 2\n", cwd, granted(true, false)).expect_err("no directory");
        assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
        assert!(gone.to_string().starts_with("its working directory /srv/project: No such file"), "{gone}");
        assert!(parse_report("ready pid_namespace none\nnonsense\n", cwd, None).is_err());
        assert_eq!(parse_ready("ready none landlock\n"), granted(false, true));
        assert_eq!(parse_ready("ready sideways none\n"), None);
        assert_eq!(parse_ready("err 2\n"), None);
        assert_eq!(parse_status("e 3\n"), Some(WaitStatus::Exited(Pid::from_raw(0), 3)));
        assert_eq!(parse_status("s 15\n"), Some(WaitStatus::Signaled(Pid::from_raw(0), Signal::SIGTERM, false)));
        assert_eq!(parse_status("x"), None);
    }
}
