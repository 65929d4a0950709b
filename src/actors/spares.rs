//! Containment helpers made ready ahead of need: a few helpers wait with their
//! session, terminal, PID namespace, init and cgroup made, and no command yet.
//! An instance that needs nothing instance-specific from its helper (it runs
//! here, with no limits and no sandbox) takes one, and only its command is sent:
//! a start then waits for the insert of its row and the `fork` and `exec` of its
//! program, not for the helper's own start as well.
//!
//! Each spare belongs to the instance arbiter whose thread started it (its death
//! signal fires when that thread ends; its reaping is registered with that
//! thread's reactor), so the instance that takes it runs on that arbiter too.
//! At most `[isolation] spare_helpers` (2) are kept; those missing are made after
//! each start that could have used one, a moment later, so that the new helper's own
//! start does not compete with the instance's for the CPU.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix::ArbiterHandle;
use nix::sys::signal::Signal;
use uuid::Uuid;

use super::Shared;
use crate::domain::instance::{DEFAULT_COLS, DEFAULT_ROWS};
use crate::domain::settings::{Limits, Sandbox};
use crate::isolation::Prepared;
use crate::terminal::pty::{self, Spawned};

/// How long after a start its replacement spare is begun.
const REFILL_AFTER: Duration = Duration::from_millis(20);

/// A ready helper: its PTY and channel, its isolation (a cgroup with no limits,
/// named for the spare, not for an instance; what the kernel granted it is in
/// `spawned`), and the arbiter it belongs to.
pub struct Spare {
    pub spawned: Spawned,
    pub isolation: Prepared,
    pub arbiter: ArbiterHandle,
}

/// The spares, shared by every start.
pub struct Spares {
    keep: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ready: Vec<Spare>,
    /// Being made now (counted against `keep`).
    making: usize,
    /// The server is stopping: none is made or handed out any more.
    closed: bool,
}

impl Spares {
    /// Keeps up to `keep` spares (0: none, every helper starts with its instance).
    #[must_use]
    pub fn new(keep: usize) -> Spares {
        Spares { keep, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an instance of `settings` can start from a spare: it runs here, and
    /// its helper sets up nothing of its own (no limits, no sandbox).
    #[must_use]
    pub fn suit(shared: &Shared, runner: &crate::runner::Plan, limits: Limits, sandbox: &Sandbox) -> bool {
        shared.spares.keep > 0
            && matches!(runner, crate::runner::Plan::Local)
            && limits.or(shared.default_limits) == Limits::default()
            && !sandbox.enabled
    }

    /// A ready spare whose helper still runs, if there is one.
    pub fn take(&self) -> Option<Spare> {
        let mut state = self.state();
        if state.closed {
            return None;
        }
        while let Some(mut spare) = state.ready.pop() {
            if matches!(spare.spawned.child.try_wait(), Ok(None)) {
                return Some(spare);
            }
            // Ended (killed from outside): reaped by try_wait; its cgroup goes.
            tracing::warn!(pid = spare.spawned.pid, "a spare containment helper had ended; not used");
            discard(spare);
        }
        None
    }

    /// Begins as many spares on `arbiter` as are missing (ready or being made).
    pub fn refill(shared: &Arc<Shared>, arbiter: &ArbiterHandle) {
        let missing = {
            let mut state = shared.spares.state();
            let have = state.ready.len() + state.making;
            let missing = if state.closed { 0 } else { shared.spares.keep.saturating_sub(have) };
            state.making += missing;
            missing
        };
        for _ in 0..missing {
            let (job, on) = (shared.clone(), arbiter.clone());
            let begun = arbiter.spawn(async move {
                actix_web::rt::time::sleep(REFILL_AFTER).await;
                let made = make(&job, on).await;
                let mut state = job.spares.state();
                state.making -= 1;
                match made {
                    Ok(spare) if !state.closed => state.ready.push(spare),
                    Ok(spare) => {
                        drop(state);
                        discard(spare);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot make a spare containment helper"),
                }
            });
            if !begun {
                shared.spares.state().making -= 1;
            }
        }
    }

    /// Ends every spare and makes no more (the server is stopping). Blocking: the
    /// spares' cgroups are removed once their processes are gone.
    pub fn close(&self) {
        let ready = {
            let mut state = self.state();
            state.closed = true;
            std::mem::take(&mut state.ready)
        };
        for spare in ready {
            end(&spare);
        }
    }
}

/// Makes a spare on this thread (an instance arbiter's): its cgroup off the thread,
/// then its helper.
async fn make(shared: &Arc<Shared>, arbiter: ArbiterHandle) -> std::io::Result<Spare> {
    let job = shared.clone();
    let prepared = actix_web::rt::task::spawn_blocking(move || {
        let host = job.isolation_host();
        let of = crate::isolation::Instance {
            id: Uuid::new_v4(),
            limits: Limits::default(),
            sandbox: &Sandbox::default(),
            workspace: std::path::Path::new("/"),
            repository: None,
            home: None,
        };
        crate::isolation::prepare(&host, &of)
    })
    .await
    .map_err(std::io::Error::other)??;
    let mut isolation = prepared;
    let plan = std::mem::take(&mut isolation.plan);
    let mut spawned = match pty::helper(DEFAULT_ROWS, DEFAULT_COLS, &plan) {
        Ok(spawned) => spawned,
        Err(e) => {
            if let Some(cgroup) = isolation.cgroup.take() {
                actix_web::rt::task::spawn_blocking(move || cgroup.remove());
            }
            return Err(e);
        }
    };
    match pty::ready(&mut spawned).await {
        Ok(()) => Ok(Spare { spawned, isolation, arbiter }),
        Err(e) => {
            discard(Spare { spawned, isolation, arbiter });
            Err(e)
        }
    }
}

impl Spare {
    /// Ends it (its start was given up before its command), off this thread.
    pub fn discard(self) {
        discard(self);
    }
}

/// Ends a spare's helper and init (its process group) and removes its cgroup.
/// Blocking.
fn end(spare: &Spare) {
    pty::signal_group(spare.spawned.pid, Signal::SIGKILL);
    if let Some(cgroup) = &spare.isolation.cgroup {
        cgroup.kill();
        cgroup.remove();
    }
}

/// [`end`], off the caller's thread.
fn discard(spare: Spare) {
    actix_web::rt::task::spawn_blocking(move || end(&spare));
}
