//! Knowing when the program waits for someone: once output has stopped for the
//! agent's `idle_ms`, the kernel is asked (`terminal::waiting::kernel`), then the agent's
//! prompt patterns are matched against the last line; a busy program is checked
//! again soon after it went quiet, then less and less often.

use std::time::{Duration, Instant};

use actix::prelude::*;
use regex::Regex;

use super::InstanceActor;
use crate::domain::instance::InstanceStatus;
use crate::domain::state::Event;
use crate::terminal::waiting::{self as detect, Verdict};

/// How long output must have stopped before the screen is folded.
const FOLD_AFTER: Duration = Duration::from_secs(1);
/// Pause between detection checks while a busy program has been quiet only briefly
/// (it may be about to reach its prompt).
const RECHECK: Duration = Duration::from_millis(150);
/// How long after the last output checks stay that frequent.
const RECHECK_WINDOW: Duration = Duration::from_secs(3);
/// How long a program whose hooks said it works must draw nothing before the
/// terminal's signals may say it waits after all.
pub(super) const HOOK_SILENCE: Duration = Duration::from_secs(20);
/// Pause before checking again a program seen waiting with output still unread.
const UNREAD_OUTPUT: Duration = Duration::from_millis(10);
/// Longest pause between two detection checks of a quiet, busy program.
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The detection's settings and timers.
pub(super) struct Waiting {
    /// Quiet this long before the first check.
    pub idle: Duration,
    patterns: Vec<Regex>,
    last_output: Instant,
    check_timer: Option<SpawnHandle>,
    /// How many checks in a row found the program busy (caps the pause).
    backoff: u32,
    fold_timer: Option<SpawnHandle>,
}

impl Waiting {
    pub fn new(idle: Duration, patterns: Vec<Regex>) -> Self {
        Waiting { idle, patterns, last_output: Instant::now(), check_timer: None, backoff: 0, fold_timer: None }
    }
}

impl InstanceActor {
    /// Output came: the program is not waiting; check again once it is quiet.
    pub(super) fn output_seen(&mut self, ctx: &mut Context<Self>) {
        self.waiting.last_output = Instant::now();
        self.waiting.backoff = 0;
        self.arm_check(self.waiting.idle, ctx);
        if self.waiting.fold_timer.is_none() {
            self.waiting.fold_timer = Some(ctx.run_later(FOLD_AFTER, Self::fold));
        }
    }

    /// Input was typed: the program may answer; check again once it is quiet.
    pub(super) fn input_typed(&mut self, ctx: &mut Context<Self>) {
        self.waiting.backoff = 0;
        self.arm_check(self.waiting.idle, ctx);
    }

    /// Arms the detection check unless one is already armed.
    pub(super) fn arm_check(&mut self, after: Duration, ctx: &mut Context<Self>) {
        if self.waiting.check_timer.is_none() && self.phase.is_running() {
            self.waiting.check_timer = Some(ctx.run_later(after, Self::check));
        }
    }

    fn fold(&mut self, ctx: &mut Context<Self>) {
        self.waiting.fold_timer = None;
        let quiet = self.waiting.last_output.elapsed();
        if quiet >= FOLD_AFTER {
            self.screen.fold();
        } else {
            self.waiting.fold_timer = Some(ctx.run_later(FOLD_AFTER - quiet, Self::fold));
        }
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        self.waiting.check_timer = None;
        if self.status != InstanceStatus::Active || !self.phase.is_running() {
            return;
        }
        let quiet = self.waiting.last_output.elapsed();
        if quiet < self.waiting.idle {
            self.arm_check(self.waiting.idle - quiet, ctx);
            return;
        }
        if self.begin_hook_wait(ctx) {
            return;
        }
        if !self.terminal_decides() {
            // A hook said it works. An agent at work draws (a spinner, a timer); one
            // whose screen stayed still this long may be waiting on a question its
            // hooks did not report (or a hook that could not reach the server).
            if quiet < HOOK_SILENCE {
                self.arm_check(HOOK_SILENCE - quiet, ctx);
                return;
            }
        }
        let Some(terminal) = &self.terminal else { return };
        let kernel = terminal.host.as_ref().map(|host| {
            // Its own processes (a cgroup lists them; else its leader's descendants:
            // with a PID namespace, orphans are adopted inside it), not all of
            // /proc: a hundred quiet instances must not read each other's processes.
            let members = || {
                Some(match &self.prepared.cgroup {
                    Some(cgroup) => cgroup.processes(),
                    None => crate::terminal::procfs::tree(host.leader),
                })
            };
            detect::kernel(host.leader, &host.pts, members)
        });
        let reason = match kernel {
            Some(Verdict::Waiting(call)) => Some(format!("kernel: {call} on the terminal")),
            busy_or_unseen => {
                let patterns = &self.waiting.patterns;
                let line = if patterns.is_empty() { String::new() } else { self.screen.last_line() };
                detect::matching_pattern(patterns, &line).map(|p| match busy_or_unseen {
                    Some(_) => format!("pattern: {}", p.as_str()),
                    // A container on another machine: its processes are not visible here.
                    None => format!("pattern: {} (no kernel signal: the engine is on another machine)", p.as_str()),
                })
            }
        };
        if reason.is_some() && terminal.output_waiting() {
            // It printed before it began to wait, and that output is not read yet:
            // the question is on its way to the screen. Read it now; decide once it
            // is there.
            terminal.hurry();
            self.arm_check(UNREAD_OUTPUT, ctx);
            return;
        }
        match reason {
            Some(reason) => {
                tracing::debug!(instance = %self.id, quiet_ms = quiet.as_millis() as u64, %reason, "waiting detected");
                let prompt = self.screen.tail_text(500);
                self.transition(Event::Wait, reason, Some(prompt), ctx);
            }
            None if quiet < RECHECK_WINDOW => self.arm_check(RECHECK, ctx),
            None => {
                self.waiting.backoff = (self.waiting.backoff + 1).min(4);
                self.arm_check((RECHECK * (1 << self.waiting.backoff)).min(MAX_CHECK_INTERVAL), ctx);
            }
        }
    }
}
