//! Runners: what an instance needs from "something that runs a program in a
//! terminal", and the two that exist.
//!
//! The instance actor asks a runner for six things and nothing more:
//! - **start**: argv, environment, working directory and terminal size in; a
//!   running program out, or why not (`spawn_failed: …`);
//! - **a byte stream out**: the terminal's output, as `io::Result<Bytes>` chunks,
//!   ending when the terminal closes;
//! - **a byte sink in** and **resize**, applied in the order asked (the actor's
//!   writer task, `actors/instance/terminal.rs`);
//! - **signal and terminate**: SIGHUP and SIGTERM, SIGKILL after the grace period;
//! - **exit status**: [`Exit`];
//! - **a detection signal**: a [`HostView`] when this machine's kernel can see the
//!   program's processes and terminal, so `terminal::waiting::kernel` can tell
//!   when it reads; without one, hooks and prompt patterns decide.
//!
//! Everything above (transcript, terminal model, events, messages, hooks,
//! webhooks, the dashboard) is the same for every runner.
//!
//! - **local** (`terminal::pty`): the program under this binary's containment
//!   helper on a PTY of the server's; its cgroup, rlimits and Landlock sandbox.
//! - **container** ([`container`]): a container with a TTY through a Docker
//!   Engine API endpoint; limits and isolation come from the engine.

pub mod container;
mod oom;

use crate::domain::runner::ContainerRunner;
use crate::domain::settings::Limits;

/// Where an instance is to run, as its launch plans it.
#[derive(Debug, Clone, Default)]
pub enum Plan {
    /// On a PTY of this machine (the local runner).
    #[default]
    Local,
    /// In a container.
    Container(Box<ContainerPlan>),
}

impl Plan {
    /// The launch of an agent's `runner` setting, with the limits in force and the
    /// binary its hooks run (`None` without an integration).
    #[must_use]
    pub fn new(runner: &crate::domain::runner::Runner, limits: Limits, binary: Option<std::path::PathBuf>) -> Plan {
        match runner {
            crate::domain::runner::Runner::Local => Plan::Local,
            crate::domain::runner::Runner::Container(runner) => {
                Plan::Container(Box::new(ContainerPlan { runner: runner.clone(), limits, binary }))
            }
        }
    }
}

/// A container runner's launch: the agent's settings, the limits in force, and
/// this server's binary to mount when the program's hooks run it.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub runner: ContainerRunner,
    pub limits: Limits,
    pub binary: Option<std::path::PathBuf>,
}

/// How the program exited: its code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// A program's processes as this machine's kernel sees them: the leader of its
/// terminal's session, and the terminal as its processes' descriptors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    pub leader: i32,
    pub pts: String,
}
