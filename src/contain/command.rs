//! The command the server sends a ready helper: received and run by the
//! command's own process, which init made ahead of it.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

/// What the command's process runs once the server sends it: the whole
/// environment (nothing of the helper's own is inherited) and the directory it
/// runs in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Command {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
}

/// The most a command may take on the channel: beyond the kernel's own limit for
/// the arguments and environment of a program (`ARG_MAX`, 2 MiB here).
const MAX_COMMAND: usize = 8 << 20;

/// The command, made ready for `exec` (C strings) before its working directory and
/// environment are set.
pub(super) struct Exec {
    argv: Vec<CString>,
    cwd: CString,
    env: Vec<(CString, CString)>,
}

impl Exec {
    /// `EINVAL` for a NUL in any part, an `=` in a variable's name, or no program.
    fn new(command: &Command) -> Result<Exec, Errno> {
        let text = |s: &[u8]| CString::new(s).map_err(|_| Errno::EINVAL);
        let argv = command.argv.iter().map(|a| text(a.as_bytes())).collect::<Result<Vec<_>, _>>()?;
        if argv.is_empty() {
            return Err(Errno::EINVAL);
        }
        let env = command
            .env
            .iter()
            .map(|(k, v)| {
                if k.is_empty() || k.contains('=') {
                    Err(Errno::EINVAL)
                } else {
                    Ok((text(k.as_bytes())?, text(v.as_bytes())?))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Exec { argv, cwd: text(command.cwd.as_os_str().as_bytes())?, env })
    }
}

/// Waits for the command: the channel's bytes up to the server's end of writing.
/// `None` when the server wrote nothing (it gave the start up) or the channel
/// failed; an error for a command that does not parse or cannot be run.
pub(super) fn receive(report: &OwnedFd) -> Option<Result<Exec, Errno>> {
    let mut text = Vec::new();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        match nix::unistd::read(report, &mut buffer) {
            Ok(0) => break,
            Ok(n) if text.len() + n <= MAX_COMMAND => text.extend_from_slice(&buffer[..n]),
            Ok(_) => return Some(Err(Errno::E2BIG)),
            Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
    if text.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(&text).map_err(|_| Errno::EINVAL).and_then(|command: Command| Exec::new(&command)))
}

/// The command: default signal dispositions and an empty mask, its working
/// directory and environment, then exec. On failure the step and its errno are
/// reported (`cwd ERRNO`, `err ERRNO`) and the process exits 127; on success the
/// report channel closes with the exec.
pub(super) fn run_command(exec: &Exec, report: &OwnedFd) -> ! {
    // A process group of its own, in the terminal's foreground: the terminal's
    // signals (Ctrl-C) reach the command's group alone, and the kernel's view of
    // the foreground group (how waiting is detected) starts at the command. SIGTTOU
    // is still ignored here, as tcsetpgrp from a background group needs.
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: SIG_DFL installs no handler code.
            let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
        }
    }
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let failed = |stage: &str, errno: Errno| -> ! {
        let _ = nix::unistd::write(report, format!("{stage} {}\n", errno as i32).as_bytes());
        std::process::exit(127);
    };
    if let Err(errno) = nix::unistd::chdir(exec.cwd.as_c_str()) {
        failed("cwd", errno);
    }
    // The command's environment replaces the helper's (execvp looks for the
    // program along the new PATH). SAFETY: this process is single-threaded.
    unsafe {
        if libc::clearenv() != 0 {
            failed("err", Errno::last());
        }
        for (name, value) in &exec.env {
            if libc::setenv(name.as_ptr(), value.as_ptr(), 1) != 0 {
                failed("err", Errno::last());
            }
        }
    }
    match nix::unistd::execvp(&exec.argv[0], &exec.argv) {
        Err(errno) => failed("err", errno),
        Ok(never) => match never {},
    }
}
