//! How an instance ends: on request (SIGHUP and SIGTERM to its process group,
//! SIGKILL after the grace period) or by itself; then the last output is
//! drained, whatever it left behind is swept, its last screen is kept for late
//! viewers, and its final status is stored before the actor stops.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use nix::sys::signal::Signal;

use super::terminal::Terminal;
use super::{Ending, Exit, InstanceActor, Phase};
use crate::domain::state::{self, Event};
use crate::runner::container::Container;
use crate::terminal::pty;

/// How long to wait for the last output after the child exited.
const DRAIN: Duration = Duration::from_millis(100);

impl InstanceActor {
    /// Starts ending the process group on request: SIGHUP and SIGTERM now, SIGKILL
    /// after the grace period. A program that exited already keeps its own end.
    pub(super) fn begin_end(&mut self, how: Ending, ctx: &mut Context<Self>) {
        if !self.phase.is_running() || state::is_final(self.status) {
            return;
        }
        self.phase = Phase::Ending(how);
        if let Some(container) = self.terminal.as_ref().and_then(Terminal::container) {
            return self.end_container(container, ctx);
        }
        let Some(pid) = self.terminal.as_ref().and_then(Terminal::pid) else { return };
        for sig in [Signal::SIGHUP, Signal::SIGCONT, Signal::SIGTERM] {
            pty::signal_group(pid, sig);
        }
        let marker = self.id.to_string();
        let grace = self.shared.grace;
        let others = self.shared.sessions.others(pid);
        let cgroup = self.prepared.cgroup.clone();
        ctx.spawn(
            actix_web::rt::task::spawn_blocking(move || {
                let rest = match cgroup {
                    Some(cgroup) => cgroup.processes(),
                    None => pty::instance_processes(Some(pid), &marker, &others),
                };
                pty::signal_each(&rest, Signal::SIGHUP);
                pty::signal_each(&rest, Signal::SIGTERM);
            })
            .into_actor(self)
            .map(|_, _, _| ()),
        );
        ctx.run_later(grace, move |act, _| {
            if matches!(act.phase, Phase::Ending(_)) {
                tracing::info!(instance = %act.id, "grace period over; killing the process group");
                pty::signal_group(pid, Signal::SIGKILL);
            }
        });
    }

    /// The same for a container: its engine signals its first process (an init
    /// that passes signals on to the program), SIGKILL after the grace period.
    fn end_container(&mut self, container: Arc<Container>, ctx: &mut Context<Self>) {
        let first = container.clone();
        ctx.spawn(
            async move {
                first.signal("SIGHUP").await;
                first.signal("SIGTERM").await;
            }
            .into_actor(self),
        );
        ctx.run_later(self.shared.grace, move |act, _| {
            if matches!(act.phase, Phase::Ending(_)) {
                tracing::info!(instance = %act.id, "grace period over; killing the container");
                actix_web::rt::spawn(async move { container.signal("SIGKILL").await });
            }
        });
    }

    /// The child was reaped: finish once its last output is read (or after a
    /// short drain, for output that never ends).
    pub(super) fn exited(&mut self, exit: Exit, ctx: &mut Context<Self>) {
        let ending = match std::mem::replace(&mut self.phase, Phase::Finishing) {
            Phase::Ending(how) => Some(how),
            Phase::Running | Phase::Launching(_) => None,
            // Already finishing (a start that failed): nothing more to do.
            finishing @ (Phase::Exited { .. } | Phase::Finishing) => {
                self.phase = finishing;
                return;
            }
        };
        self.phase = Phase::Exited { exit, ending };
        if self.output.eof {
            self.finish(ctx);
        } else {
            // Its last output is read at once, not on the next tick.
            if let Some(terminal) = &self.terminal {
                terminal.hurry();
            }
            ctx.run_later(DRAIN, Self::finish);
        }
    }

    /// The output ended (every process closed the terminal).
    pub(super) fn output_ended(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Exited { .. }) {
            self.finish(ctx);
        } else if let Some(container) = self.terminal.as_ref().and_then(Terminal::container) {
            // A container's terminal closes when it exits; only then is its exit
            // status asked for: an engine answers a pending wait by polling the
            // container, which stalls its attach stream meanwhile (p99 echo 0.2 →
            // 10 ms with Podman).
            ctx.spawn(
                async move { container.wait().await }.into_actor(self).map(|exit, act, ctx| act.exited(exit, ctx)),
            );
        }
    }

    /// The child is gone and its output read: sweep what it left, then store the
    /// final status.
    fn finish(&mut self, ctx: &mut Context<Self>) {
        let Phase::Exited { exit, ending } = std::mem::replace(&mut self.phase, Phase::Finishing) else {
            return;
        };
        self.flush_output(ctx);
        if let Some(container) = self.terminal.as_ref().and_then(Terminal::container) {
            return self.finish_container(container, exit, ending, ctx);
        }
        let session = self.terminal.as_ref().and_then(Terminal::pid);
        let marker = self.id.to_string();
        let grace = self.shared.grace;
        let (screen_file, screen) = self.last_screen();
        let others = session.map(|s| self.shared.sessions.others(s)).unwrap_or_default();
        let cgroup = self.prepared.cgroup.take();
        let sweep = actix_web::rt::task::spawn_blocking(move || {
            if let Err(e) = std::fs::write(&screen_file, screen) {
                tracing::warn!(error = %e, "cannot keep the last screen");
            }
            match cgroup {
                Some(cgroup) => {
                    sweep_cgroup(&cgroup, grace);
                    let ended = (cgroup.oom_kills(), Some(cgroup.usage()));
                    cgroup.remove();
                    ended
                }
                None => {
                    sweep(session, &marker, grace, &others);
                    (0, None)
                }
            }
        });
        ctx.wait(sweep.into_actor(self).map(move |ended, act, ctx| {
            let (oom_kills, usage) = ended.unwrap_or((0, None));
            act.store_end(exit, ending, oom_kills, usage, ctx);
        }));
    }

    /// The last screen, kept for late viewers: where, and what.
    fn last_screen(&mut self) -> (std::path::PathBuf, Vec<u8>) {
        let (rows, cols) = self.screen.size();
        let mut screen = format!("{cols} {rows}\n").into_bytes();
        screen.extend_from_slice(&self.screen.snapshot());
        (self.shared.final_screen(self.id), screen)
    }

    /// A container exited: keep its last screen, learn whether its memory limit
    /// ended it, and remove it.
    fn finish_container(
        &mut self,
        container: Arc<Container>,
        exit: Exit,
        ending: Option<Ending>,
        ctx: &mut Context<Self>,
    ) {
        let (screen_file, screen) = self.last_screen();
        let ended = async move {
            let kept = actix_web::rt::task::spawn_blocking(move || std::fs::write(&screen_file, screen)).await;
            if !matches!(kept, Ok(Ok(()))) {
                tracing::warn!(container = %container.name, "cannot keep the last screen");
            }
            let oom_killed = container.oom_killed().await;
            container.remove().await;
            oom_killed
        };
        ctx.wait(ended.into_actor(self).map(move |oom_killed, act, ctx| {
            act.store_end(exit, ending, u64::from(oom_killed), None, ctx);
        }));
    }

    fn store_end(
        &mut self,
        exit: Exit,
        ending: Option<Ending>,
        oom_kills: u64,
        usage: Option<crate::isolation::Usage>,
        ctx: &mut Context<Self>,
    ) {
        let Exit { code, signal } = exit;
        let (event, reason) = match ending {
            Some(how @ Ending::Terminate(_)) => (Event::Terminate, how.reason().as_str().to_owned()),
            Some(how @ Ending::Complete) => (Event::Complete, how.reason().as_str().to_owned()),
            // The kernel ended a process of it for its memory limit, and it failed.
            None if oom_kills > 0 && (code != Some(0) || signal.is_some()) => {
                (Event::Exit { code, signal }, "memory_limit".to_owned())
            }
            None => match (code, signal) {
                (Some(0), _) => (Event::Exit { code, signal }, "exited".to_owned()),
                (Some(c), _) => (Event::Exit { code, signal }, format!("exited with code {c}")),
                (None, Some(s)) => (Event::Exit { code, signal }, format!("killed by signal {s}")),
                (None, None) => (Event::Exit { code, signal }, "exit status unknown".to_owned()),
            },
        };
        if !self.transition_with(event, reason, None, usage, ctx) {
            self.stop_when_written(ctx);
        }
    }

    /// Stops once every queued write is stored (the final transition among them).
    pub(super) fn stop_when_written(&mut self, ctx: &mut Context<Self>) {
        if self.writes.idle() {
            for waiter in self.waiters.drain(..) {
                let _ = waiter.send(());
            }
            ctx.stop();
        }
    }
}

/// Ends what is left in the instance's cgroup: SIGHUP and SIGTERM, then, after a
/// short while, the whole cgroup at once.
fn sweep_cgroup(cgroup: &crate::isolation::InstanceCgroup, grace: Duration) {
    let deadline = Instant::now() + grace.min(Duration::from_millis(500));
    loop {
        let rest = cgroup.processes();
        if rest.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            cgroup.kill();
            return;
        }
        pty::signal_each(&rest, Signal::SIGHUP);
        pty::signal_each(&rest, Signal::SIGTERM);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for every process of the instance to go, SIGKILLing what remains after
/// a short while (the leader already exited; the rest got SIGHUP from the kernel).
fn sweep(session: Option<i32>, marker: &str, grace: Duration, others: &HashSet<i32>) {
    let deadline = Instant::now() + grace.min(Duration::from_millis(500));
    loop {
        let rest = pty::instance_processes(session, marker, others);
        if rest.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            pty::signal_each(&rest, Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(20));
            if pty::instance_processes(session, marker, others).is_empty() {
                return;
            }
        } else {
            pty::signal_each(&rest, Signal::SIGHUP);
            pty::signal_each(&rest, Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(20));
        }
        if Instant::now() >= deadline + Duration::from_secs(5) {
            tracing::warn!(marker, "processes survive SIGKILL: {rest:?}");
            return;
        }
    }
}
