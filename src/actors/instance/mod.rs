//! `InstanceActor`: one per running instance. It owns the PTY and the child's
//! process group, reads output as a stream attached to the actor, appends it to
//! the transcript, keeps the terminal model, detects when the program waits, and
//! is the only writer of its instance's status (through an ordered write queue,
//! see `writes`). It reaps its child and sweeps whatever the child left behind.
//!
//! Its life is one `Phase`: launching, running, ending on request, exited (the
//! last output draining), finishing (leftovers swept, final status stored). The
//! rest of its state is grouped by concern, one file each: `output` (transcript
//! and viewers), `waiting` (detection), `terminal` (the way into the PTY),
//! `writes` (storage), `ending`, and `handlers` (what it is asked).

mod contained;
mod ending;
mod handlers;
mod hooked;
mod output;
mod terminal;
mod waiting;
mod writes;

use std::collections::{HashSet, VecDeque};
use std::fs::OpenOptions;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use regex::Regex;
use tokio::sync::oneshot;
use uuid::Uuid;

pub use handlers::{Answer, Asked, Chunk, Deliver, End, Input, InstanceError, MovedOn, Resize, Watch, Watched};
pub use hooked::Hooked;

use super::registry::{Finished, Registry};
use super::Shared;
use crate::domain::instance::{EndReason, InstanceStatus};
use crate::domain::message::Message;
use crate::domain::state::{self, Event};
use crate::terminal::pty::{self, SpawnSpec};
use crate::terminal::screen::Screen;
use output::Output;
use terminal::{Runs, Sink, Terminal};
use waiting::Waiting;
use writes::Writes;

/// How an instance is being ended on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Stopped by a user, a deletion, or server shutdown (the reason).
    Terminate(EndReason),
    /// The agent declared it is done.
    Complete,
}

impl Ending {
    /// The reason stored with the end.
    #[must_use]
    pub fn reason(self) -> EndReason {
        match self {
            Ending::Terminate(reason) => reason,
            Ending::Complete => EndReason::AgentComplete,
        }
    }
}

/// Everything an instance actor starts from.
pub struct Launch {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub spec: SpawnSpec,
    /// A containment helper made ready ahead of need, to run the command in.
    pub ready: Option<crate::terminal::pty::Spawned>,
    pub idle: Duration,
    pub patterns: Vec<Regex>,
    /// User messages not yet typed (the prompt first), oldest first.
    pub held: Vec<Message>,
    /// The task this instance works on.
    pub task_id: Option<i64>,
    pub registry: Addr<Registry>,
    pub shared: Arc<Shared>,
    /// Told once its start is settled (see [`Settled`]).
    pub started: oneshot::Sender<Settled>,
    /// Its start was stored with its row (`ready` is the helper it was stored
    /// with): once the program runs, nothing more is stored of the start.
    pub begun: bool,
    /// Its cgroup and sandbox, prepared.
    pub isolation: crate::isolation::Prepared,
    /// Whether its row got stored, when that happens while it starts (see [`Row`]).
    pub row: Option<Row>,
}

/// What the creator of an instance learns once its start is settled.
#[derive(Debug)]
pub enum Settled {
    /// Its first transition (started, or failed) is stored: the row as it was then.
    Stored(Option<Box<crate::domain::instance::Instance>>),
    /// Its start was stored with its row, and its program now runs.
    Running,
}

/// Tells an instance started while its row is being inserted whether the row got
/// stored (`Some(true)`): its program runs only then, and nothing is stored of it
/// when the row could not be.
pub type Row = tokio::sync::watch::Receiver<Option<bool>>;

/// Waits until `row` is settled: whether the row got stored.
pub async fn row_stored(mut row: Row) -> bool {
    row.wait_for(Option::is_some).await.is_ok_and(|stored| *stored == Some(true))
}

use crate::runner::Exit;

/// Where an instance's program is in its life. The stored `status` says what
/// users see; the phase says what the actor is doing about the process.
pub(super) enum Phase {
    /// Not started yet (with the helper made ready for it, if one was, and whether
    /// its start was stored with its row).
    Launching(Box<(SpawnSpec, Option<crate::terminal::pty::Spawned>, bool)>),
    /// The program runs (or its start is being confirmed).
    Running,
    /// Asked to end: signalled, SIGKILL after the grace period.
    Ending(Ending),
    /// The program exited; its last output drains.
    Exited { exit: Exit, ending: Option<Ending> },
    /// Leftovers are swept and the final status stored; the actor stops once written.
    Finishing,
}

impl Phase {
    /// Whether the program runs and nobody asked it to end.
    fn is_running(&self) -> bool {
        matches!(self, Phase::Running)
    }
}

/// The actor of one running instance.
pub struct InstanceActor {
    id: Uuid,
    agent_id: Uuid,
    task_id: Option<i64>,
    status: InstanceStatus,
    phase: Phase,
    shared: Arc<Shared>,
    registry: Addr<Registry>,
    /// Told once its start is settled.
    started: Option<oneshot::Sender<Settled>>,
    /// The program's terminal, once it was started.
    terminal: Option<Terminal>,
    /// Its cgroup and the rest of what was prepared for its isolation.
    prepared: crate::isolation::Prepared,
    /// How it is isolated, once the helper reported (stored with the start).
    isolation: Option<crate::isolation::Isolation>,
    /// While it waits: the id of this wait (a reply may name it), new each time.
    wait_id: Option<Uuid>,
    /// While it waits: what it asks.
    prompt: Option<String>,
    /// The choices the next wait offers (an agent's question's options), taken by it.
    next_options: Vec<String>,
    /// What its program's hooks last said, until someone types.
    hook: Option<hooked::HookSaid>,
    /// A wait a hook reported, begun once the output settles.
    hook_wait: Option<hooked::HookWait>,
    output: Output,
    screen: Screen,
    waiting: Waiting,
    /// User messages to type when the program next waits, oldest first.
    held: VecDeque<Message>,
    /// Messages typed by this actor: a message is typed at most once, however it
    /// arrives (a reply's own request, or the catch-up after launch).
    typed: HashSet<Uuid>,
    /// Told once the final status is stored.
    waiters: Vec<oneshot::Sender<()>>,
    writes: Writes,
    /// Until the program is let run: whether its row got stored.
    row: Option<Row>,
}

impl InstanceActor {
    /// Starts the actor on `arbiter` (whose thread must live as long as the server).
    pub fn launch(arbiter: &ArbiterHandle, launch: Launch) -> Addr<Self> {
        InstanceActor::start_in_arbiter(arbiter, move |_| {
            let Launch {
                id,
                agent_id,
                spec,
                ready,
                idle,
                patterns,
                held,
                task_id,
                registry,
                shared,
                started,
                begun,
                isolation,
                row,
            } = launch;
            let screen = Screen::new(spec.rows, spec.cols);
            InstanceActor {
                id,
                agent_id,
                task_id,
                // Stored as started with its row, or idle until its program runs.
                status: if begun { InstanceStatus::Active } else { InstanceStatus::Idle },
                phase: Phase::Launching(Box::new((spec, ready, begun))),
                shared,
                registry,
                started: Some(started),
                terminal: None,
                prepared: isolation,
                isolation: None,
                wait_id: None,
                prompt: None,
                next_options: Vec::new(),
                hook: None,
                hook_wait: None,
                output: Output::new(),
                screen,
                waiting: Waiting::new(idle, patterns),
                held: held.into(),
                typed: HashSet::new(),
                waiters: Vec::new(),
                writes: Writes::default(),
                row,
            }
        })
    }

    /// Takes the helper made ready for this instance, or starts one; returns its
    /// channel, on which its command goes once the instance's row is stored.
    fn spawn_child(
        &mut self,
        spec: &SpawnSpec,
        ready: Option<pty::Spawned>,
        ctx: &mut Context<Self>,
    ) -> std::io::Result<(std::os::fd::OwnedFd, Option<crate::isolation::Granted>)> {
        let transcript = OpenOptions::new().create(true).append(true).open(self.shared.transcript(self.id))?;
        let spawned = match ready {
            Some(spawned) => {
                // Made at the default size: the instance's own, before its command runs.
                crate::terminal::writer::set_size(&spawned.master, spec.rows, spec.cols)?;
                spawned
            }
            None => pty::helper(spec.rows, spec.cols, &spec.isolation)?,
        };
        let len = transcript.metadata()?.len();
        self.output.open(transcript, len, self.shared.transcript_max);
        self.shared.sessions.add(spawned.pid);
        let host = crate::runner::HostView { leader: spawned.pid, pts: spawned.pts };
        let pace = crate::terminal::reader::Pace::default();
        let writer = crate::terminal::writer::PtyWriter::new(spawned.input)?;
        let output = crate::terminal::reader::PtyStream::new(spawned.master, pace.clone())?;
        let runs = Runs::Local { pid: spawned.pid };
        self.terminal = Some(Terminal::new(runs, Some(host), Sink::Pty(writer), Some(pace)));
        self.phase = Phase::Running;
        ctx.add_stream(output);
        let mut child = spawned.child;
        ctx.spawn(async move { child.wait().await }.into_actor(self).map(|status, act, ctx| {
            use std::os::unix::process::ExitStatusExt;
            let exit = match status {
                Ok(s) => Exit { code: s.code(), signal: s.signal() },
                Err(_) => Exit { code: None, signal: None },
            };
            act.exited(exit, ctx);
        }));
        Ok((spawned.report, spawned.granted))
    }

    /// Runs `then` once the instance's row is stored (at once when it was before
    /// the start). When it could not be stored, nothing of the instance may run or
    /// stay: its helper, which has not run the command, is killed, and the actor
    /// stops without storing anything; its creator is told there is no row.
    fn once_stored(
        &mut self,
        row: Option<Row>,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) {
        let Some(row) = row else { return then(self, ctx) };
        ctx.wait(row_stored(row).into_actor(self).map(move |stored, act, ctx| {
            if stored {
                return then(act, ctx);
            }
            tracing::warn!(instance = %act.id, "its row could not be stored: its program does not run");
            if let Some(pid) = act.terminal.as_ref().and_then(Terminal::pid) {
                pty::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            }
            let (shared, id) = (act.shared.clone(), act.id);
            actix_web::rt::task::spawn_blocking(move || shared.remove_files(id));
            act.started.take();
            ctx.stop();
        }));
    }

    fn spawn_failed(&mut self, program: &str, e: &std::io::Error, ctx: &mut Context<Self>) {
        let reason = match e.kind() {
            // A sandbox the agent requires and the kernel cannot give.
            std::io::ErrorKind::Unsupported => e.to_string(),
            _ => format!("spawn_failed: {program}: {e}"),
        };
        self.start_failed(reason, ctx);
    }

    /// The program did not start: `reason` is the final status's reason.
    fn start_failed(&mut self, reason: String, ctx: &mut Context<Self>) {
        tracing::warn!(instance = %self.id, %reason, "could not start");
        if self.terminal.is_none() {
            // Nothing runs: the failure is the final status.
            self.phase = Phase::Finishing;
        }
        self.transition(Event::Fail, reason, None, ctx);
    }

    /// Applies `event` through the state machine; stores it (in order) before announcing.
    fn transition(&mut self, event: Event, reason: String, prompt: Option<String>, ctx: &mut Context<Self>) -> bool {
        self.transition_with(event, reason, prompt, None, ctx)
    }

    /// [`Self::transition`], with what the instance used (for its end).
    fn transition_with(
        &mut self,
        event: Event,
        reason: String,
        prompt: Option<String>,
        usage: Option<crate::isolation::Usage>,
        ctx: &mut Context<Self>,
    ) -> bool {
        let Ok(to) = state::next(self.status, event) else { return false };
        // The transition's offset marks where the output stood: all of it is sent first.
        self.flush_output(ctx);
        let from = self.status;
        self.status = to;
        self.wait_id = (to == InstanceStatus::AwaitingInput).then(Uuid::new_v4);
        self.prompt = prompt.clone().filter(|_| to == InstanceStatus::AwaitingInput);
        let (exit_code, exit_signal) = match event {
            Event::Exit { code, signal } => (code, signal),
            _ => (None, None),
        };
        let started = event == Event::Start;
        let record = crate::db::instances::Transition {
            id: self.id,
            agent_id: self.agent_id,
            from,
            to,
            reason,
            at: crate::domain::now(),
            exit_code,
            exit_signal,
            pid: self.terminal.as_ref().filter(|_| started).and_then(|t| t.host.as_ref()).map(|h| h.leader),
            pty: self.terminal.as_ref().filter(|_| started).and_then(|t| t.host.as_ref()).map(|h| h.pts.clone()),
            isolation: self
                .isolation
                .as_ref()
                .filter(|_| started)
                .and_then(|isolation| serde_json::to_string(isolation).ok()),
            usage: usage.and_then(|usage| serde_json::to_string(&usage).ok()),
            wait_id: self.wait_id.map(|w| w.to_string()),
            prompt,
            options: std::mem::take(&mut self.next_options),
            offset: Some(self.output.len),
        };
        self.enqueue(writes::Write::Transition(Box::new(record)), None, ctx);
        true
    }
}

impl Actor for InstanceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Phase::Launching(launching) = std::mem::replace(&mut self.phase, Phase::Running) else { return };
        let (spec, ready, begun) = *launching;
        let program = spec.argv.first().cloned().unwrap_or_default();
        let row = self.row.take();
        if let crate::runner::Plan::Container(plan) = &spec.runner {
            let plan = (**plan).clone();
            // A container's program starts with the container.
            return self.once_stored(row, ctx, move |act, ctx| act.start_container(spec, plan, ctx));
        }
        // The helper makes the session, namespace and init now, while the row may
        // still be being stored; it runs the command once told to go.
        let (report, granted) = match self.spawn_child(&spec, ready, ctx) {
            Ok(channel) => channel,
            Err(e) => return self.once_stored(row, ctx, move |act, ctx| act.spawn_failed(&program, &e, ctx)),
        };
        let Some(pid) = self.terminal.as_ref().and_then(Terminal::pid) else { return };
        let command = spec.command();
        self.once_stored(row, ctx, move |act, ctx| {
            // The helper's channel closes as the command's program is executed (or
            // after saying why it cannot be): a few milliseconds, awaited without
            // blocking this thread, which serves other instances. Nothing else of
            // this actor runs meanwhile.
            let starting = async move { pty::start(report, pid, &command, granted).await };
            ctx.wait(starting.into_actor(act).map(move |outcome, act, ctx| match outcome {
                Ok(granted) => {
                    act.isolation = Some(act.prepared.report(granted));
                    act.shared.running.insert(act.id, act.prepared.cgroup.clone(), pid, act.agent_id);
                    if begun {
                        tracing::info!(instance = %act.id, from = "idle", to = "active", reason = "started", "instance status (stored with its row)");
                        if let Some(started) = act.started.take() {
                            let _ = started.send(Settled::Running);
                        }
                    } else {
                        act.transition(Event::Start, "started".into(), None, ctx);
                    }
                    act.arm_check(act.waiting.idle, ctx);
                }
                Err(e) => act.spawn_failed(&program, &e, ctx),
            }));
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(pid) = self.terminal.as_ref().and_then(Terminal::pid) {
            self.shared.sessions.remove(pid);
        }
        self.shared.running.remove(self.id);
        // Its permission requests can no longer be answered.
        let (shared, id) = (self.shared.clone(), self.id);
        actix_web::rt::spawn(async move {
            let closed = crate::db::run(&shared.db.agents, move |conn| {
                crate::db::approvals::close_pending(
                    conn,
                    id,
                    crate::domain::integration::ApprovalStatus::Withdrawn,
                    "instance ended",
                )
            })
            .await;
            for approval in closed.unwrap_or_default() {
                shared.hooks.forget(approval.id);
            }
        });
        if let Some(cgroup) = self.prepared.cgroup.take() {
            // Normally removed when it ended; here after a start that failed.
            actix_web::rt::task::spawn_blocking(move || {
                cgroup.kill();
                cgroup.remove();
            });
        }
        self.shared.tokens.revoke(self.id);
        self.registry.do_send(Finished { id: self.id, agent_id: self.agent_id });
    }
}
