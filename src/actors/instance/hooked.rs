//! What the program's own hooks say (see `crate::integration`). A hook outranks
//! the terminal: a wait a hook declared holds, whatever the program draws, until
//! someone types or a hook says it works again; while a hook says it works, the
//! kernel signal and prompt patterns do not declare a wait unless the screen has
//! been still for `HOOK_SILENCE` (an agent at work draws). Once someone types, the
//! terminal's signals count again until the next hook.
//!
//! A hook runs while the program waits for it, so a wait it reports (the end of a
//! turn, a notification) begins once the program has answered the hook and drawn
//! its prompt: when its output has been quiet for the agent's `idle_ms`. Typing
//! earlier would reach a program that is not reading yet. A permission request
//! waits at once: its question is on the screen while the hook is held.

use actix::prelude::*;

use super::{InstanceActor, InstanceError};
use crate::domain::instance::InstanceStatus;
use crate::domain::state::Event;

/// What the last hook said the program does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HookSaid {
    Working,
    Waiting,
}

/// A hook reported the program's state.
#[derive(Message)]
#[rtype(result = "Result<(), InstanceError>")]
pub enum Hooked {
    /// It works: a prompt was submitted, a tool runs or ran, a request was decided.
    Working { reason: String },
    /// It waits: what it asks (`None`: the screen's last lines) and the choices it
    /// offers; `now`: at once, rather than once its output has settled.
    Waiting { reason: String, prompt: Option<String>, options: Vec<String>, now: bool },
}

/// A wait a hook reported, to begin once the output settles.
pub(super) struct HookWait {
    pub reason: String,
    pub prompt: Option<String>,
    pub options: Vec<String>,
}

impl Handler<Hooked> for InstanceActor {
    type Result = Result<(), InstanceError>;

    fn handle(&mut self, msg: Hooked, ctx: &mut Context<Self>) -> Self::Result {
        self.running()?;
        match msg {
            Hooked::Working { reason } => {
                self.hook = Some(HookSaid::Working);
                self.hook_wait = None;
                if self.status == InstanceStatus::AwaitingInput {
                    self.transition(Event::Resume, reason, None, ctx);
                }
            }
            Hooked::Waiting { reason, prompt, options, now } => {
                self.hook = Some(HookSaid::Waiting);
                if !now && self.status == InstanceStatus::Active {
                    self.hook_wait = Some(HookWait { reason, prompt, options });
                    self.arm_check(self.waiting.idle, ctx);
                    return Ok(());
                }
                let prompt = prompt.unwrap_or_else(|| self.screen.tail_text(500));
                if self.status == InstanceStatus::AwaitingInput {
                    // Already waiting (the terminal said so first, or an earlier
                    // question): this is a new question, with a wait id of its own.
                    self.rewait(reason, prompt, options, ctx);
                } else {
                    self.next_options = options;
                    self.transition(Event::Wait, reason, Some(prompt), ctx);
                    self.next_options.clear();
                }
            }
        }
        Ok(())
    }
}

impl InstanceActor {
    /// Whether output may end a wait (not one a hook declared).
    pub(super) fn output_resumes(&self) -> bool {
        self.hook != Some(HookSaid::Waiting)
    }

    /// Whether the terminal's signals may declare a wait (no hook speaks for it).
    pub(super) fn terminal_decides(&self) -> bool {
        self.hook.is_none()
    }

    /// Someone typed: the terminal's signals count again until the next hook.
    pub(super) fn hook_answered(&mut self) {
        self.hook = None;
        self.hook_wait = None;
    }

    /// Begins the wait a hook reported, once the output settled; whether there was one.
    pub(super) fn begin_hook_wait(&mut self, ctx: &mut Context<Self>) -> bool {
        let Some(HookWait { reason, prompt, options }) = self.hook_wait.take() else { return false };
        let prompt = prompt.unwrap_or_else(|| self.screen.tail_text(500));
        self.next_options = options;
        self.transition(Event::Wait, reason, Some(prompt), ctx);
        self.next_options.clear();
        true
    }

    /// A new question while already waiting: stored as a wait of its own.
    fn rewait(&mut self, reason: String, prompt: String, options: Vec<String>, ctx: &mut Context<Self>) {
        if self.prompt.as_deref() == Some(prompt.as_str()) {
            return;
        }
        self.flush_output(ctx);
        self.wait_id = Some(uuid::Uuid::new_v4());
        self.prompt = Some(prompt.clone());
        let record = crate::db::instances::Transition {
            wait_id: self.wait_id.map(|w| w.to_string()),
            prompt: Some(prompt),
            options,
            offset: Some(self.output.len),
            ..crate::db::instances::Transition::new(self.id, self.agent_id, self.status, self.status, reason)
        };
        self.enqueue(super::writes::Write::Transition(Box::new(record)), None, ctx);
    }
}
