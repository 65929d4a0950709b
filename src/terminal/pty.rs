//! The one place that spawns, signals and reaps processes.
//!
//! A child runs in a new session whose controlling terminal is its own PTY; its
//! pid is also its process group and session id. The child is this binary's
//! containment helper ([`crate::contain`]), which runs the command in a PID
//! namespace of its own and ends as the command ends. It is spawned with
//! `posix_spawn` (no code of the server's runs between fork and exec, so the
//! server's memory is not copied); the helper makes its session, takes the
//! terminal and arms `PR_SET_PDEATHSIG` (SIGKILL) itself. That signal fires when
//! the *thread* that spawned it exits, so spawning happens on the instance
//! arbiter's thread, which lives as long as the server. Processes that escape the
//! session (setsid) are found by the `SWITCHBOARD_INSTANCE_ID` marker in their
//! environment.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use pty_process::Size;

use crate::terminal::procfs;

/// Name of the environment marker every instance process carries.
pub const MARKER: &str = "SWITCHBOARD_INSTANCE_ID";

/// What to run.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment (nothing is inherited beyond it).
    pub env: BTreeMap<String, String>,
    pub rows: u16,
    pub cols: u16,
    /// What the containment helper sets up before the command (cgroups, rlimits,
    /// sandbox); the terminal is added to the sandbox here.
    pub isolation: crate::isolation::HelperPlan,
    /// Where it runs: on a PTY here, or in a container (`crate::runner`).
    pub runner: crate::runner::Plan,
}

impl SpawnSpec {
    /// What the containment helper runs.
    #[must_use]
    pub fn command(&self) -> crate::contain::Command {
        crate::contain::Command { argv: self.argv.clone(), cwd: self.cwd.clone(), env: self.env.clone() }
    }
}

/// Longest wait for the containment helper to say the command runs.
const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A started containment helper and its PTY, ready for a command ([`start`]).
pub struct Spawned {
    pub child: tokio::process::Child,
    pub pid: i32,
    /// The helper's channel: it says it is ready ([`ready`]), the command goes to
    /// it, and why the command did not start comes back, if it did not ([`start`]).
    pub report: std::os::fd::OwnedFd,
    /// The master side, to read (`terminal::reader`); non-blocking.
    pub master: std::os::fd::OwnedFd,
    /// The master side again, to write (`terminal::writer`).
    pub input: std::os::fd::OwnedFd,
    /// `/dev/pts/N`: how the child's side of the terminal appears in `/proc/*/fd`.
    pub pts: String,
    /// What the kernel granted it, once it said it was ready ([`ready`]).
    pub granted: Option<crate::contain::Granted>,
}

/// Opens a PTY of `rows` by `cols` and starts a containment helper on it with
/// `plan`; the helper makes its session, namespace and init, then waits for its
/// command ([`start`]). Must run on a thread with a tokio reactor that outlives
/// the child (see the module docs).
///
/// # Errors
/// The PTY cannot be opened, or the helper cannot be started.
pub fn helper(rows: u16, cols: u16, plan: &crate::isolation::HelperPlan) -> io::Result<Spawned> {
    let (pty, pts) = pty_process::open().map_err(io::Error::other)?;
    pty.resize(Size::new(rows, cols)).map_err(io::Error::other)?;
    let pts_name = std::fs::read_link(format!("/proc/self/fd/{}", pts.as_raw_fd()))?.to_string_lossy().into_owned();
    // Created close-on-exec, so that no other child inherits it; the helper gets it
    // as its standard error and moves it (see `contain::own_session`).
    let (report_read, report_write) = std::os::unix::net::UnixStream::pair()?;
    let (report_read, report_write) = (OwnedFd::from(report_read), OwnedFd::from(report_write));
    let mut plan = plan.clone();
    plan.allow_terminal(&pts_name);
    // No code of the server's runs in the child, so std spawns it with posix_spawn
    // (vfork): the server's memory is not copied, which a fork of a server holding
    // a thousand instances takes milliseconds to do and undo. The helper makes its
    // session, takes the terminal, arms its death signal and sets the umask. It
    // inherits no environment and runs in `/`: the command brings its own.
    let mut command = match helper_binary() {
        Some(helper) => tokio::process::Command::new(helper),
        None => {
            let mut own = tokio::process::Command::new("/proc/self/exe");
            own.arg(crate::contain::SUBCOMMAND);
            own
        }
    };
    command
        .arg("--report-fd")
        .arg("2")
        .arg("--session")
        .arg(nix::unistd::getpid().to_string())
        .arg("--umask")
        .arg(format!("{:o}", crate::files::child_umask().bits()));
    if plan != crate::isolation::HelperPlan::default() {
        command.arg("--plan").arg(serde_json::to_string(&plan).map_err(io::Error::other)?);
    }
    command
        .current_dir("/")
        .env_clear()
        .stdin(std::process::Stdio::from(pts.as_fd().try_clone_to_owned()?))
        .stdout(std::process::Stdio::from(pts.as_fd().try_clone_to_owned()?))
        .stderr(std::process::Stdio::from(report_write));
    let child = command.spawn()?;
    drop((command, pts));
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).ok_or_else(|| io::Error::other("child has no pid"))?;
    // Out of pty-process's reactor registration: reading and writing register
    // descriptors of their own (see `terminal::reader`).
    let master = std::os::fd::OwnedFd::from(pty);
    let input = master.try_clone()?;
    Ok(Spawned { child, pid, report: report_read, master, input, pts: pts_name, granted: None })
}

/// The containment helper's own binary, `switchboard-contain` beside this one (built
/// and installed with it): a fraction of this binary's size, it starts about half a
/// millisecond sooner and holds less memory per instance. Where it is missing, this
/// binary serves, as `switchboard __contain`.
fn helper_binary() -> Option<&'static std::path::Path> {
    static HELPER: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    HELPER
        .get_or_init(|| {
            let path = std::env::current_exe().ok()?.with_file_name("switchboard-contain");
            path.is_file().then_some(path)
        })
        .as_deref()
}

/// Sends the helper its command, then waits (at most 10 s) for its channel to
/// close: with nothing more said once the command's program is executed, or
/// after why it could not start. On the caller's thread, without blocking it. Everything else (its
/// session, namespace and init) may have been made long before. On an error the
/// command did not start; the helper's group is killed.
///
/// # Errors
/// The command could not be started (its errno, or its working directory), or
/// the helper said nothing in time.
pub async fn start(
    report: OwnedFd,
    pid: i32,
    command: &crate::contain::Command,
    ready: Option<crate::contain::Granted>,
) -> io::Result<crate::contain::Granted> {
    let result = exchange(report, command).await.and_then(|r| crate::contain::parse_report(&r, &command.cwd, ready));
    if result.is_err() {
        // The helper exits by itself after reporting an error, but make sure.
        signal_group(pid, Signal::SIGKILL);
    }
    result
}

/// Waits (at most 10 s) for a helper to say it is ready, and what the kernel
/// granted it (into `spawned.granted`), before any command.
///
/// # Errors
/// The helper ended or said something else.
pub async fn ready(spawned: &mut Spawned) -> io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut stream = channel(spawned.report.try_clone()?)?;
    let read = async {
        // A byte at a time: nothing of what follows the line may be taken.
        let mut line = Vec::new();
        while line.last() != Some(&b'\n') && line.len() < 256 {
            line.push(stream.read_u8().await?);
        }
        Ok::<_, io::Error>(line)
    };
    let line = match tokio::time::timeout(REPORT_TIMEOUT, read).await {
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "the helper did not get ready in time")),
        Ok(read) => read?,
    };
    let line = String::from_utf8_lossy(&line);
    let granted = crate::contain::parse_ready(&line)
        .ok_or_else(|| io::Error::other(format!("the helper said {line:?} instead of getting ready")))?;
    spawned.granted = Some(granted);
    Ok(())
}

/// The helper's channel, for the reactor of the caller's thread.
fn channel(fd: OwnedFd) -> io::Result<tokio::net::UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

/// Writes the command and the end of writing, then reads what the helper reports,
/// up to the channel's end.
async fn exchange(fd: OwnedFd, command: &crate::contain::Command) -> io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let text = serde_json::to_vec(command).map_err(io::Error::other)?;
    let mut stream = channel(fd)?;
    let talk = async {
        stream.write_all(&text).await?;
        stream.shutdown().await?;
        let mut report = Vec::new();
        // One byte more than a report may have, to tell one that says too much.
        (&mut stream).take(4097).read_to_end(&mut report).await?;
        Ok::<_, io::Error>(report)
    };
    match tokio::time::timeout(REPORT_TIMEOUT, talk).await {
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the instance's helper did not report in time")),
        Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Err(io::Error::other("the instance's helper ended before it took its command"))
        }
        Ok(Err(e)) => Err(e),
        Ok(Ok(report)) if report.len() > 4096 => Err(io::Error::other("the instance's helper said too much")),
        Ok(Ok(report)) => Ok(String::from_utf8_lossy(&report).into_owned()),
    }
}

/// Sends `sig` to a process group; false if it no longer exists.
pub fn signal_group(pgid: i32, sig: Signal) -> bool {
    signal::killpg(Pid::from_raw(pgid), sig).is_ok()
}

/// Sends `sig` to each process.
pub fn signal_each(pids: &[i32], sig: Signal) {
    for pid in pids {
        let _ = signal::kill(Pid::from_raw(*pid), sig);
    }
}

/// The sessions of the instances that run now (each child's pid), so a sweep for
/// one instance can pass over the processes of the others without reading their
/// environment: a process cannot leave a session except into a new one of its own.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashSet<i32>>);

impl Sessions {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<i32>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add(&self, session: i32) {
        self.set().insert(session);
    }

    pub fn remove(&self, session: i32) {
        self.set().remove(&session);
    }

    /// The live sessions other than `session`.
    #[must_use]
    pub fn others(&self, session: i32) -> HashSet<i32> {
        let mut set = self.set().clone();
        set.remove(&session);
        set
    }
}

/// Every live process of an instance: its session (the child's pid is the session
/// id), plus anything that escaped it but carries the instance marker. Processes
/// in `others` (sessions of other live instances) cannot carry the marker and are
/// passed over. Zombies are left out (they are already dead; their parent reaps
/// them).
///
/// One `getsid` per process and an environment read only for processes outside
/// every instance session: with a thousand instances this is about a millisecond,
/// where reading each process's `stat` and `environ` took about fifteen.
#[must_use]
pub fn instance_processes(session: Option<i32>, marker: &str, others: &HashSet<i32>) -> Vec<i32> {
    let me = std::process::id() as i32;
    procfs::pids()
        .into_iter()
        .filter(|&pid| {
            if pid == me {
                return false;
            }
            let Ok(sid) = nix::unistd::getsid(Some(Pid::from_raw(pid))) else { return false };
            let sid = sid.as_raw();
            let ours = session == Some(sid)
                || (!others.contains(&sid) && procfs::env_var(pid, MARKER).as_deref() == Some(marker));
            ours && procfs::stat(pid).is_some_and(|s| s.state != 'Z')
        })
        .collect()
}

/// Every live process carrying any instance marker, with the marker's value.
#[must_use]
pub fn marked_processes() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    procfs::pids()
        .into_iter()
        .filter(|pid| *pid != me && procfs::stat(*pid).is_some_and(|s| s.state != 'Z'))
        .filter_map(|pid| Some((pid, procfs::env_var(pid, MARKER)?)))
        .collect()
}

/// Raises the open-files soft limit to the hard limit (each instance holds a PTY
/// and a transcript). Returns the new soft limit.
///
/// # Errors
/// The limit cannot be read or set.
pub fn raise_open_files_limit() -> nix::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}
