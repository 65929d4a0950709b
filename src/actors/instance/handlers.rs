//! What the instance actor is asked to do: type input, resize, deliver a reply,
//! record an agent's question, end, and show its screen.

use actix::prelude::*;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use super::{Ending, InstanceActor};
use crate::domain::instance::InstanceStatus;
use crate::domain::message::{typed, Message};
use crate::domain::state::{is_final, Event};

/// Most input bytes that may wait for a program that does not read.
const MAX_PENDING_INPUT: usize = 1024 * 1024;

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

/// Change the terminal size.
#[derive(Message)]
#[rtype(result = "Result<(), InstanceError>")]
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

/// The agent asked the user something (`requires_user_input`).
#[derive(Message)]
#[rtype(result = "Result<(), InstanceError>")]
pub struct Asked {
    pub prompt: String,
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
    /// more than [`VIEWER_QUEUE`] chunks behind.
    pub chunks: tokio::sync::mpsc::Receiver<Chunk>,
}

/// Chunks a viewer may fall behind before it is dropped (up to 16 KiB each).
pub const VIEWER_QUEUE: usize = 64;

impl InstanceActor {
    fn ensure_running(&self) -> Result<(), InstanceError> {
        let running = matches!(self.status, InstanceStatus::Active | InstanceStatus::AwaitingInput);
        if running && self.ending.is_none() && self.exit.is_none() {
            Ok(())
        } else if is_final(self.status) || self.ending.is_some() || self.exit.is_some() {
            Err(InstanceError::NotRunning("ending"))
        } else {
            Err(InstanceError::NotRunning(self.status.as_str()))
        }
    }

    /// Writes to the PTY in order without ever blocking the actor.
    fn write_pty(&mut self, bytes: Vec<u8>) -> Result<(), InstanceError> {
        let Some(writer) = self.writer.clone() else { return Err(InstanceError::NotRunning("starting")) };
        let pending = self.pending_input.get();
        if pending + bytes.len() > MAX_PENDING_INPUT {
            return Err(InstanceError::InputFull(pending));
        }
        let counter = self.pending_input.clone();
        counter.set(pending + bytes.len());
        actix::spawn(async move {
            let mut pty = writer.lock().await;
            if let Err(e) = pty.write_all(&bytes).await {
                tracing::debug!(error = %e, "input not written: the terminal is gone");
            }
            counter.set(counter.get().saturating_sub(bytes.len()));
        });
        Ok(())
    }

    /// Types a user message (content, then Enter; a bracketed paste when the
    /// program asked for it) and records the delivery.
    pub(super) fn type_message(
        &mut self,
        message: &Message,
        reply: Option<oneshot::Sender<String>>,
        ctx: &mut Context<Self>,
    ) {
        let bytes = typed(&message.content, self.screen.bracketed_paste());
        if let Err(e) = self.write_pty(bytes) {
            tracing::warn!(instance = %self.id, error = %e, "message not typed");
            return;
        }
        self.typed.insert(message.id);
        let at = crate::domain::now();
        self.enqueue(super::Write::Delivered { id: message.id, at, reply }, ctx);
        self.transition(Event::Resume, "message_delivered".into(), None, ctx);
        self.backoff = 0;
        self.arm_check(self.idle, ctx);
    }
}

impl Handler<Input> for InstanceActor {
    type Result = Result<(), InstanceError>;

    fn handle(&mut self, msg: Input, ctx: &mut Context<Self>) -> Self::Result {
        self.ensure_running()?;
        self.write_pty(msg.0)?;
        if self.status == InstanceStatus::AwaitingInput {
            self.transition(Event::Resume, "input".into(), None, ctx);
        }
        self.backoff = 0;
        self.arm_check(self.idle, ctx);
        Ok(())
    }
}

impl Handler<Resize> for InstanceActor {
    type Result = Result<(), InstanceError>;

    fn handle(&mut self, msg: Resize, ctx: &mut Context<Self>) -> Self::Result {
        self.ensure_running()?;
        let Some(writer) = self.writer.clone() else { return Err(InstanceError::NotRunning("starting")) };
        self.screen.resize(msg.rows, msg.cols);
        let size = pty_process::Size::new(msg.rows, msg.cols);
        actix::spawn(async move {
            if let Err(e) = writer.lock().await.resize(size) {
                tracing::debug!(error = %e, "resize not applied: the terminal is gone");
            }
        });
        self.enqueue(super::Write::Size { cols: msg.cols, rows: msg.rows }, ctx);
        Ok(())
    }
}

impl Handler<Deliver> for InstanceActor {
    type Result = Result<Option<oneshot::Receiver<String>>, InstanceError>;

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) -> Self::Result {
        self.ensure_running()?;
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

impl Handler<Asked> for InstanceActor {
    type Result = Result<(), InstanceError>;

    fn handle(&mut self, msg: Asked, ctx: &mut Context<Self>) -> Self::Result {
        self.ensure_running()?;
        self.transition(Event::Wait, "agent_message".into(), Some(msg.prompt), ctx);
        Ok(())
    }
}

impl Handler<End> for InstanceActor {
    type Result = MessageResult<End>;

    fn handle(&mut self, msg: End, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        // A child that already exited by itself keeps its own final status.
        if self.exit.is_none() {
            self.begin_end(msg.0, ctx);
        }
        MessageResult(rx)
    }
}

impl Handler<Watch> for InstanceActor {
    type Result = MessageResult<Watch>;

    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) -> Self::Result {
        if self.finishing {
            return MessageResult(None);
        }
        // The snapshot covers every byte read; the offset must too.
        self.flush_output(ctx);
        let (tx, chunks) = tokio::sync::mpsc::channel(VIEWER_QUEUE);
        self.viewers.push(tx);
        let snapshot = msg.snapshot.then(|| {
            let (rows, cols) = self.screen.size();
            (self.screen.snapshot(), cols, rows)
        });
        MessageResult(Some(Watched { snapshot, offset: self.transcript_len, chunks }))
    }
}
