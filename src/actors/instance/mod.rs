//! `InstanceActor`: one per running instance. It owns the PTY and the child's
//! process group, reads output as a stream attached to the actor, appends it to
//! the transcript, keeps the terminal model, detects when the program waits, and
//! is the only writer of its instance's status (through an ordered write queue,
//! see `writes`). It reaps its child and sweeps whatever the child left behind.

mod ending;
mod handlers;
mod writes;

use std::cell::Cell;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use pty_process::OwnedWritePty;
use regex::Regex;
use tokio::sync::oneshot;
use uuid::Uuid;

pub use handlers::{Asked, Chunk, Deliver, End, Input, InstanceError, Resize, Watch, Watched};

use super::registry::{Finished, Registry};
use super::Shared;
use crate::detect::{self, Verdict};
use crate::domain::instance::InstanceStatus;
use crate::domain::message::Message;
use crate::domain::state::{self, Event};
use crate::pty::{self, SpawnSpec};
use crate::screen::Screen;
use writes::Write;

/// How long output must have stopped before the screen is folded.
const FOLD_AFTER: Duration = Duration::from_secs(1);
/// Pause between detection checks while a busy program has been quiet only briefly
/// (it may be about to reach its prompt).
const RECHECK: Duration = Duration::from_millis(150);
/// How long after the last output checks stay that frequent.
const RECHECK_WINDOW: Duration = Duration::from_secs(3);
/// Longest pause between two detection checks of a quiet, busy program.
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How long to wait for the last output after the child exited.
const DRAIN: Duration = Duration::from_millis(100);
/// A read this long filled the terminal's buffer (the kernel's line discipline
/// hands out at most 4095 bytes at a time): more output is already waiting.
const FULL_READ: usize = 4095;
/// Most output gathered before it is written to the transcript and sent.
const GATHER_MAX: usize = 64 * 1024;
/// Longest time gathered output waits for more.
const GATHER_WAIT: Duration = Duration::from_millis(1);

/// How an instance is being ended on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Stopped by a user, an agent deletion, or server shutdown (the reason).
    Terminate(&'static str),
    /// The agent declared it is done.
    Complete,
}

/// Everything an instance actor starts from.
pub struct Launch {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub spec: SpawnSpec,
    pub idle: Duration,
    pub patterns: Vec<Regex>,
    /// User messages not yet typed (the prompt first), oldest first.
    pub held: Vec<Message>,
    /// The task this instance works on.
    pub task_id: Option<i64>,
    pub registry: Addr<Registry>,
    pub shared: Arc<Shared>,
    /// Told once the process runs (or could not start).
    pub started: oneshot::Sender<Result<(), String>>,
}

/// The actor of one running instance.
pub struct InstanceActor {
    id: Uuid,
    agent_id: Uuid,
    task_id: Option<i64>,
    /// Bytes written to the transcript so far (the offset of the next output).
    transcript_len: u64,
    /// Live viewers' bounded queues; one that is full is dropped (it catches up
    /// from the transcript).
    viewers: Vec<tokio::sync::mpsc::Sender<Chunk>>,
    status: InstanceStatus,
    shared: Arc<Shared>,
    registry: Addr<Registry>,
    launch: Option<SpawnSpec>,
    /// Told once the first transition (started or failed) is stored.
    started: Option<oneshot::Sender<Result<(), String>>>,
    pid: Option<i32>,
    containment: Option<crate::contain::Containment>,
    pts: String,
    writer: Option<Rc<tokio::sync::Mutex<OwnedWritePty>>>,
    pending_input: Rc<Cell<usize>>,
    transcript: Option<File>,
    /// Keeps the transcript within `transcript_max_mb` on disk.
    cap: crate::transcript::Cap,
    /// Output read but not yet written to the transcript nor sent to viewers:
    /// while a program prints as fast as it can, full reads are gathered so the
    /// write and the viewers' wake-up happen once per 64 KiB rather than per read.
    unsent: Vec<u8>,
    gather_timer: Option<SpawnHandle>,
    screen: Screen,
    idle: Duration,
    patterns: Vec<Regex>,
    last_output: Instant,
    check_timer: Option<SpawnHandle>,
    backoff: u32,
    fold_timer: Option<SpawnHandle>,
    held: VecDeque<Message>,
    /// Messages typed by this actor: a message is typed at most once, however it
    /// arrives (a reply's own request, or the catch-up after launch).
    typed: std::collections::HashSet<uuid::Uuid>,
    exit: Option<(Option<i32>, Option<i32>)>,
    eof: bool,
    draining: bool,
    ending: Option<Ending>,
    finishing: bool,
    waiters: Vec<oneshot::Sender<()>>,
    writes: VecDeque<Write>,
    writing: bool,
}

impl InstanceActor {
    /// Starts the actor on `arbiter` (whose thread must live as long as the server).
    pub fn launch(arbiter: &ArbiterHandle, launch: Launch) -> Addr<Self> {
        InstanceActor::start_in_arbiter(arbiter, move |_| {
            let Launch { id, agent_id, spec, idle, patterns, held, task_id, registry, shared, started } = launch;
            let screen = Screen::new(spec.rows, spec.cols);
            InstanceActor {
                id,
                agent_id,
                task_id,
                transcript_len: 0,
                viewers: Vec::new(),
                status: InstanceStatus::Idle,
                shared,
                registry,
                launch: Some(spec),
                started: Some(started),
                pid: None,
                containment: None,
                pts: String::new(),
                writer: None,
                pending_input: Rc::new(Cell::new(0)),
                transcript: None,
                cap: crate::transcript::Cap::unlimited(),
                unsent: Vec::new(),
                gather_timer: None,
                screen,
                idle,
                patterns,
                last_output: Instant::now(),
                check_timer: None,
                backoff: 0,
                fold_timer: None,
                held: held.into(),
                typed: std::collections::HashSet::new(),
                exit: None,
                eof: false,
                draining: false,
                ending: None,
                finishing: false,
                waiters: Vec::new(),
                writes: VecDeque::new(),
                writing: false,
            }
        })
    }

    /// Starts the child; returns the helper's report pipe, to be read off this thread.
    fn spawn_child(&mut self, spec: &SpawnSpec, ctx: &mut Context<Self>) -> std::io::Result<std::os::fd::OwnedFd> {
        let transcript = OpenOptions::new().create(true).append(true).open(self.shared.transcript(self.id))?;
        let spawned = pty::spawn(spec)?;
        self.transcript_len = transcript.metadata()?.len();
        self.cap = crate::transcript::Cap::new(self.shared.transcript_max, &transcript, self.transcript_len);
        self.transcript = Some(transcript);
        self.pid = Some(spawned.pid);
        self.shared.sessions.add(spawned.pid);
        self.pts = spawned.pts;
        self.writer = Some(Rc::new(tokio::sync::Mutex::new(spawned.writer)));
        ctx.add_stream(crate::pty_stream::PtyStream::new(spawned.reader));
        let mut child = spawned.child;
        ctx.spawn(async move { child.wait().await }.into_actor(self).map(|status, act, ctx| {
            use std::os::unix::process::ExitStatusExt;
            act.exit = Some(match status {
                Ok(s) => (s.code(), s.signal()),
                Err(_) => (None, None),
            });
            act.maybe_finish(ctx);
        }));
        Ok(spawned.report)
    }

    fn spawn_failed(&mut self, program: &str, e: &std::io::Error, ctx: &mut Context<Self>) {
        let reason = format!("spawn_failed: {program}: {e}");
        tracing::warn!(instance = %self.id, %reason, "could not start");
        self.transition(Event::Fail, reason, None, ctx);
    }

    /// Applies `event` through the state machine; stores it (in order) before announcing.
    fn transition(&mut self, event: Event, reason: String, prompt: Option<String>, ctx: &mut Context<Self>) -> bool {
        let Ok(to) = state::next(self.status, event) else { return false };
        // The transition's offset marks where the output stood: all of it is sent first.
        self.flush_output(ctx);
        let from = self.status;
        self.status = to;
        let (exit_code, exit_signal) = match event {
            Event::Exit { code, signal } => (code, signal),
            _ => (None, None),
        };
        let record = crate::db::instances::Transition {
            id: self.id,
            agent_id: self.agent_id,
            from,
            to,
            reason,
            at: crate::domain::now(),
            exit_code,
            exit_signal,
            pid: if event == Event::Start { self.pid } else { None },
            pty: if event == Event::Start { Some(self.pts.clone()) } else { None },
            containment: if event == Event::Start {
                self.containment.map(crate::contain::Containment::as_str)
            } else {
                None
            },
            prompt,
            offset: Some(self.transcript_len),
        };
        self.enqueue(Write::Transition(record), ctx);
        true
    }

    fn on_output(&mut self, bytes: &actix_web::web::Bytes, ctx: &mut Context<Self>) {
        let more_waiting = bytes.len() >= FULL_READ;
        if self.unsent.is_empty() && !more_waiting {
            // The common case (an echo, a line, a prompt): out at once, no copy.
            self.send_output(bytes.clone());
        } else {
            if self.unsent.is_empty() {
                self.unsent.reserve_exact(GATHER_MAX);
            }
            self.unsent.extend_from_slice(bytes);
            if !more_waiting || self.unsent.len() >= GATHER_MAX {
                self.flush_output(ctx);
            } else if self.gather_timer.is_none() {
                self.gather_timer = Some(ctx.run_later(GATHER_WAIT, |act, ctx| {
                    act.gather_timer = None;
                    act.flush_output(ctx);
                }));
            }
        }
        let bytes = &bytes[..];
        self.screen.feed(bytes);
        self.last_output = Instant::now();
        self.backoff = 0;
        if self.status == InstanceStatus::AwaitingInput {
            self.transition(Event::Resume, "output".into(), None, ctx);
        }
        self.arm_check(self.idle, ctx);
        if self.fold_timer.is_none() {
            self.fold_timer = Some(ctx.run_later(FOLD_AFTER, Self::fold));
        }
    }

    /// Writes and sends whatever output was gathered.
    fn flush_output(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.gather_timer.take() {
            ctx.cancel_future(timer);
        }
        if !self.unsent.is_empty() {
            let bytes = actix_web::web::Bytes::from(std::mem::take(&mut self.unsent));
            self.send_output(bytes);
        }
    }

    /// Appends output to the transcript, then hands it to the live viewers.
    fn send_output(&mut self, bytes: actix_web::web::Bytes) {
        self.transcript_len += bytes.len() as u64;
        if let Some(file) = self.transcript.as_mut() {
            if let Err(e) = file.write_all(&bytes) {
                tracing::warn!(instance = %self.id, error = %e, "transcript write failed");
            }
            self.cap.after_append(file, self.transcript_len, self.id);
        }
        if !self.viewers.is_empty() {
            let chunk = Chunk { bytes, end: self.transcript_len };
            self.viewers.retain(|viewer| viewer.try_send(chunk.clone()).is_ok());
        }
    }

    fn fold(&mut self, ctx: &mut Context<Self>) {
        self.fold_timer = None;
        let quiet = self.last_output.elapsed();
        if quiet >= FOLD_AFTER {
            self.screen.fold();
        } else {
            self.fold_timer = Some(ctx.run_later(FOLD_AFTER - quiet, Self::fold));
        }
    }

    /// Arms the detection check unless one is already armed.
    fn arm_check(&mut self, after: Duration, ctx: &mut Context<Self>) {
        if self.check_timer.is_none() && self.ending.is_none() {
            self.check_timer = Some(ctx.run_later(after, Self::check));
        }
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        self.check_timer = None;
        if self.status != InstanceStatus::Active || self.ending.is_some() || self.exit.is_some() {
            return;
        }
        let quiet = self.last_output.elapsed();
        if quiet < self.idle {
            self.arm_check(self.idle - quiet, ctx);
            return;
        }
        let Some(pid) = self.pid else { return };
        let reason = match detect::kernel(pid, &self.pts) {
            Verdict::Waiting(call) => Some(format!("kernel: {call} on the terminal")),
            Verdict::Busy => {
                let line = if self.patterns.is_empty() { String::new() } else { self.screen.last_line() };
                detect::matching_pattern(&self.patterns, &line).map(|p| format!("pattern: {}", p.as_str()))
            }
        };
        match reason {
            Some(reason) => {
                tracing::debug!(instance = %self.id, quiet_ms = quiet.as_millis() as u64, %reason, "waiting detected");
                let prompt = self.screen.tail_text(500);
                self.transition(Event::Wait, reason, Some(prompt), ctx);
            }
            None if quiet < RECHECK_WINDOW => self.arm_check(RECHECK, ctx),
            None => {
                self.backoff = (self.backoff + 1).min(4);
                self.arm_check((RECHECK * (1 << self.backoff)).min(MAX_CHECK_INTERVAL), ctx);
            }
        }
    }

    /// Types the oldest held message if the program waits.
    fn deliver_held(&mut self, ctx: &mut Context<Self>) {
        if self.status != InstanceStatus::AwaitingInput || self.ending.is_some() {
            return;
        }
        if let Some(message) = self.held.pop_front() {
            self.type_message(&message, None, ctx);
        }
    }
}

impl Actor for InstanceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(spec) = self.launch.take() else { return };
        let program = spec.argv.first().cloned().unwrap_or_default();
        let report = match self.spawn_child(&spec, ctx) {
            Ok(report) => report,
            Err(e) => return self.spawn_failed(&program, &e, ctx),
        };
        // The helper reports once the command runs (or why it cannot); that wait is
        // a few milliseconds of fork and exec, kept off this thread, which serves
        // other instances. Nothing else of this actor runs meanwhile.
        let Some(pid) = self.pid else { return };
        let wait = actix_web::rt::task::spawn_blocking(move || pty::read_report(report, pid));
        ctx.wait(wait.into_actor(self).map(move |outcome, act, ctx| {
            match outcome.map_err(std::io::Error::other).and_then(|r| r) {
                Ok(containment) => {
                    act.containment = Some(containment);
                    act.transition(Event::Start, "started".into(), None, ctx);
                    act.arm_check(act.idle, ctx);
                }
                Err(e) => act.spawn_failed(&program, &e, ctx),
            }
        }));
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(pid) = self.pid {
            self.shared.sessions.remove(pid);
        }
        self.shared.tokens.revoke(self.id);
        self.registry.do_send(Finished { id: self.id, agent_id: self.agent_id });
    }
}

impl StreamHandler<std::io::Result<actix_web::web::Bytes>> for InstanceActor {
    fn handle(&mut self, item: std::io::Result<actix_web::web::Bytes>, ctx: &mut Context<Self>) {
        match item {
            Ok(bytes) => self.on_output(&bytes, ctx),
            // EIO: every process closed its side of the terminal.
            Err(_) => self.eof = true,
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // Unlike the default, output ending does not stop the actor: the exit
        // status is not known yet.
        self.eof = true;
        self.flush_output(ctx);
        self.maybe_finish(ctx);
    }
}
