//! The instance's ordered write queue. Every change the actor makes to the
//! database (status transitions, message deliveries, terminal size) is stored
//! here one after another, off the actor's thread, and announced only once it is
//! committed. Output keeps flowing meanwhile: nothing waits on the disk but the
//! announcement.

use std::collections::VecDeque;

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::InstanceActor;
use crate::actors::Shared;
use crate::db::{instances, messages, DbError};
use crate::domain::instance::{Instance, InstanceStatus};
use crate::domain::state::is_final;

/// One change to store.
#[derive(Debug, Clone)]
pub(super) enum Write {
    Transition(Box<instances::Transition>),
    Delivered {
        id: Uuid,
        at: String,
    },
    /// A reply typed before it was stored (`in_reply_to`): stored as delivered.
    Answered {
        message: Box<crate::domain::message::Message>,
        agent: Uuid,
        at: String,
    },
    Size {
        cols: u16,
        rows: u16,
    },
}

/// Told when a change is stored: for a delivery, when it was typed.
pub(super) type Reply = oneshot::Sender<String>;

/// The queue: the change being stored (if any) is the first, each with whoever
/// waits for it (several for a size that replaced others).
#[derive(Default)]
pub(super) struct Writes {
    queue: VecDeque<(Write, Vec<Reply>)>,
    storing: bool,
}

impl Writes {
    /// Nothing is queued or being stored.
    pub fn idle(&self) -> bool {
        !self.storing && self.queue.is_empty()
    }
}

impl Write {
    fn store(
        &self,
        conn: &rusqlite::Connection,
        shared: &Shared,
        instance: Uuid,
        task: Option<i64>,
    ) -> Result<(), DbError> {
        match self {
            Write::Transition(record) => {
                instances::record(conn, record)?;
                if let Some(task) = task.filter(|_| is_final(record.to)) {
                    shared.bus.follow_task(conn, task, record.to)?;
                }
                Ok(())
            }
            Write::Delivered { id, at } => messages::mark_delivered(conn, *id, at),
            Write::Answered { message, agent, .. } => messages::insert(conn, message, *agent),
            Write::Size { cols, rows } => instances::set_size(conn, instance, *cols, *rows),
        }
    }
}

impl InstanceActor {
    /// Queues a change; it is stored after every change queued before it. A new
    /// terminal size replaces one still waiting in the queue (only the last size
    /// matters), so a burst of resizes costs one write, not one fsync each, and the
    /// queue holds at most one size besides the transitions and deliveries.
    pub(super) fn enqueue(&mut self, write: Write, reply: Option<Reply>, ctx: &mut Context<Self>) {
        if let Write::Size { cols, rows } = write {
            let waiting = self.writes.queue.iter_mut().skip(usize::from(self.writes.storing));
            if let Some((Write::Size { cols: c, rows: r }, replies)) =
                waiting.into_iter().find(|(w, _)| matches!(w, Write::Size { .. }))
            {
                (*c, *r) = (cols, rows);
                replies.extend(reply);
                return;
            }
        }
        self.writes.queue.push_back((write, reply.into_iter().collect()));
        self.pump(ctx);
    }

    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.writes.storing {
            return;
        }
        let Some((write, _)) = self.writes.queue.front() else { return };
        self.writes.storing = true;
        // The first transition is awaited by whoever created the instance, which
        // answers with the row: it is read here, in the same hand-off.
        let first = self.started.is_some() && matches!(write, Write::Transition(_));
        let (shared, write) = (self.shared.clone(), write.clone());
        let (id, task) = (self.id, self.task_id);
        let job = crate::db::run(&self.shared.db.agents, move |conn| -> Result<Option<Instance>, DbError> {
            write.store(conn, &shared, id, task)?;
            Ok(if first { instances::get(conn, id)? } else { None })
        });
        ctx.spawn(job.into_actor(self).map(move |result, act, ctx| {
            act.writes.storing = false;
            let row = match result {
                Ok(row) => row,
                Err(e) => {
                    tracing::error!(instance = %act.id, error = %e, "storing an instance change failed");
                    None
                }
            };
            if let Some((write, replies)) = act.writes.queue.pop_front() {
                act.announce(write, replies, row, ctx);
            }
            act.pump(ctx);
            if is_final(act.status) {
                act.stop_when_written(ctx);
            }
        }));
    }

    /// Tells the world about a stored change.
    fn announce(&mut self, write: Write, replies: Vec<Reply>, row: Option<Instance>, ctx: &mut Context<Self>) {
        match write {
            Write::Transition(record) => {
                if let Some(started) = self.started.take() {
                    let _ = started.send(super::Settled::Stored(row.map(Box::new)));
                }
                tracing::info!(
                    instance = %self.id,
                    from = record.from.as_str(),
                    to = record.to.as_str(),
                    reason = %record.reason,
                    prompt = record.prompt.as_deref().map(|p| p.chars().count()),
                    "instance status"
                );
                if record.to == InstanceStatus::AwaitingInput {
                    self.deliver_held(ctx);
                }
            }
            Write::Delivered { at, .. } | Write::Answered { at, .. } => {
                for reply in replies {
                    let _ = reply.send(at.clone());
                }
                let _ = self.shared.message_wake.send(self.id);
            }
            Write::Size { .. } => {
                for reply in replies {
                    let _ = reply.send(String::new());
                }
            }
        }
    }
}
