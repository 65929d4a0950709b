//! What the instance actor is asked to do: type input, resize, deliver a reply,
//! record an agent's question, end, and show its screen.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::writes::{Reply, Write};
use super::{Ending, InstanceActor, Phase};
use crate::domain::instance::InstanceStatus;
use crate::domain::message::{typed, Message};
use crate::domain::state::{is_final, Event};

/// Why the instance could not do what was asked.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum InstanceError {
    /// The instance is queued, ending or ended.
    #[error("the instance is {0}, not running")]
    NotRunning(&'static str),
    /// The program does not read its input.
    #[error("the program is not reading its input; {0} bytes are still waiting to be written")]
    InputFull(usize),
}

/// Type bytes into the terminal.
#[derive(Message)]
#[rtype(result = "Result<(), InstanceError>")]
pub struct Input(pub Vec<u8>);

/// Change the terminal size; told once the size is stored.
#[derive(Message)]
#[rtype(result = "Result<oneshot::Receiver<String>, InstanceError>")]
pub struct Resize {
    pub cols: u16,
    pub rows: u16,
}

/// A user message to type now or when the program next waits.
#[derive(Message)]
#[rtype(result = "Result<Option<oneshot::Receiver<String>>, InstanceError>")]
pub struct Deliver {
    pub message: Message,
    pub now: bool,
}

/// A user's reply to the question named by `in_reply_to` (a `wait_id`): typed now if
/// the instance still waits on that question, stored as delivered; otherwise refused
/// with what it is now, and nothing is typed or stored.
#[derive(Message)]
#[rtype(result = "Result<oneshot::Receiver<String>, MovedOn>")]
pub struct Answer {
    pub message: Message,
    pub agent_id: uuid::Uuid,
    pub in_reply_to: String,
}

/// What an instance is now, for a reply that named an earlier question.
#[derive(Debug, Clone)]
pub struct MovedOn {
    pub status: InstanceStatus,
    /// While it waits: the question it waits on now, and that wait's id.
    pub prompt: Option<String>,
    pub wait_id: Option<String>,
}

/// The agent asked the user something (`requires_user_input`).
#[derive(Message)]
#[rtype(result = "Result<(), InstanceError>")]
pub struct Asked {
    pub prompt: String,
    /// The choices it offers.
    pub options: Vec<String>,
}

/// End the instance; the receiver fires once its final status is stored.
#[derive(Message)]
#[rtype(result = "oneshot::Receiver<()>")]
pub struct End(pub Ending);

/// A piece of output and the transcript offset just after it.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub bytes: actix_web::web::Bytes,
    pub end: u64,
}

/// Start following the output: from now on every chunk goes to the returned queue.
/// `None` once the instance is ending (its output is complete in the transcript).
#[derive(Message)]
#[rtype(result = "Option<Watched>")]
pub struct Watch {
    /// Also return the current screen.
    pub snapshot: bool,
}

/// What a new viewer gets, all taken at one moment.
pub struct Watched {
    /// The screen as escape sequences, cols, rows.
    pub snapshot: Option<(Vec<u8>, u16, u16)>,
    /// The transcript offset the first queued chunk starts at.
    pub offset: u64,
    /// Output from `offset` on; closed when the instance ends or the viewer falls
    /// more than `VIEWER_QUEUE` chunks behind.
    pub chunks: tokio::sync::mpsc::Receiver<Chunk>,
}

/// Chunks a viewer may fall behind before it is dropped (up to 16 KiB each).
pub const VIEWER_QUEUE: usize = 64;

impl InstanceActor {
    /// The terminal of a program that runs and was not asked to end.
    pub(super) fn running(&mut self) -> Result<&mut super::Terminal, InstanceError> {
        let started = matches!(self.status, InstanceStatus::Active | InstanceStatus::AwaitingInput);
        match (&self.phase, &mut self.terminal) {
            (Phase::Running, Some(terminal)) if started => Ok(terminal),
            (Phase::Launching(_) | Phase::Running, _) if !is_final(self.status) => {
                Err(InstanceError::NotRunning(self.status.as_str()))
            }
            _ => Err(InstanceError::NotRunning("ending")),
        }
    }

    /// Types a user message (content, then Enter; a bracketed paste when the
    /// program asked for it) and records the delivery.
    pub(super) fn type_message(&mut self, message: &Message, reply: Option<Reply>, ctx: &mut Context<Self>) {
        self.type_and_store(message, None, reply, ctx);
    }

    /// Types a message; records it as delivered, inserting it first when it is not
    /// stored yet (`new`: its agent). Whether it was typed.
    fn type_and_store(
        &mut self,
        message: &Message,
        new: Option<uuid::Uuid>,
        reply: Option<Reply>,
        ctx: &mut Context<Self>,
    ) -> bool {
        let bytes = typed(&message.content, self.screen.bracketed_paste());
        if let Err(e) = self.running().and_then(|terminal| terminal.write(bytes)) {
            tracing::warn!(instance = %self.id, error = %e, "message not typed");
            return false;
        }
        self.typed.insert(message.id);
        self.hook_answered();
        let at = crate::domain::now();
        let write = match new {
            Some(agent) => {
                let mut stored = message.clone();
                stored.delivered_at = Some(at.clone());
                Write::Answered { message: Box::new(stored), agent, at }
            }
            None => Write::Delivered { id: message.id, at },
        };
        self.enqueue(write, reply, ctx);
        self.transition(Event::Resume, "message_delivered".into(), None, ctx);
        self.input_typed(ctx);
        true
    }

    /// Types the oldest held message if the program waits.
    pub(super) fn deliver_held(&mut self, ctx: &mut Context<Self>) {
        if self.status != InstanceStatus::AwaitingInput || !self.phase.is_running() {
            return;
        }
        if let Some(message) = self.held.pop_front() {
            self.type_message(&message, None, ctx);
        }
    }
}

impl Handler<Input> for InstanceActor {
    type Result = Result<(), InstanceError>;

    fn handle(&mut self, msg: Input, ctx: &mut Context<Self>) -> Self::Result {
        self.running()?.write(msg.0)?;
        self.hook_answered();
        if self.status == InstanceStatus::AwaitingInput {
            self.transition(Event::Resume, "input".into(), None, ctx);
        }
        self.input_typed(ctx);
        Ok(())
    }
}

impl Handler<Resize> for InstanceActor {
    type Result = Result<oneshot::Receiver<String>, InstanceError>;

    fn handle(&mut self, msg: Resize, ctx: &mut Context<Self>) -> Self::Result {
        self.running()?.resize(msg.cols, msg.rows)?;
        self.screen.resize(msg.rows, msg.cols);
        let (stored, told) = oneshot::channel();
        self.enqueue(Write::Size { cols: msg.cols, rows: msg.rows }, Some(stored), ctx);
        Ok(told)
    }
}

impl Handler<Deliver> for InstanceActor {
    type Result = Result<Option<oneshot::Receiver<String>>, InstanceError>;

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) -> Self::Result {
        self.running()?;
        if self.typed.contains(&msg.message.id) || self.held.iter().any(|m| m.id == msg.message.id) {
            return Ok(None);
        }
        if msg.now || self.status == InstanceStatus::AwaitingInput {
            let (tx, rx) = oneshot::channel();
            self.type_message(&msg.message, Some(tx), ctx);
            Ok(Some(rx))
        } else {
            self.held.push_back(msg.message);
            Ok(None)
        }
    }
}

impl Handler<Answer> for InstanceActor {
    type Result = Result<oneshot::Receiver<String>, MovedOn>;

    fn handle(&mut self, msg: Answer, ctx: &mut Context<Self>) -> Self::Result {
        let waiting = self.status == InstanceStatus::AwaitingInput && self.phase.is_running();
        let now = self.wait_id.filter(|_| waiting).map(|w| w.to_string());
        let moved = MovedOn { status: self.status, prompt: self.prompt.clone().filter(|_| waiting), wait_id: now };
        if moved.wait_id.as_deref() != Some(msg.in_reply_to.as_str()) {
            return Err(moved);
        }
        let (tx, rx) = oneshot::channel();
        if self.type_and_store(&msg.message, Some(msg.agent_id), Some(tx), ctx) {
            Ok(rx)
        } else {
            Err(moved)
        }
    }
}

impl Handler<Asked> for InstanceActor {
    type Result = Result<(), InstanceError>;

    fn handle(&mut self, msg: Asked, ctx: &mut Context<Self>) -> Self::Result {
        self.running()?;
        self.next_options = msg.options;
        self.transition(Event::Wait, "agent_message".into(), Some(msg.prompt), ctx);
        self.next_options.clear();
        Ok(())
    }
}

impl Handler<End> for InstanceActor {
    type Result = MessageResult<End>;

    fn handle(&mut self, msg: End, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        // A child that already exited by itself keeps its own final status.
        self.begin_end(msg.0, ctx);
        MessageResult(rx)
    }
}

impl Handler<Watch> for InstanceActor {
    type Result = MessageResult<Watch>;

    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) -> Self::Result {
        if matches!(self.phase, Phase::Finishing) {
            return MessageResult(None);
        }
        // The snapshot covers every byte read; the offset must too.
        self.flush_output(ctx);
        let (tx, chunks) = tokio::sync::mpsc::channel(VIEWER_QUEUE);
        self.output.watch(tx);
        let snapshot = msg.snapshot.then(|| {
            let (rows, cols) = self.screen.size();
            (self.screen.snapshot(), cols, rows)
        });
        MessageResult(Some(Watched { snapshot, offset: self.output.len, chunks }))
    }
}
