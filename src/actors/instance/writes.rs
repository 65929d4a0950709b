//! The instance's ordered write queue. Every change the actor makes to the
//! database (status transitions, message deliveries, terminal size) is stored
//! here one after another, off the actor's thread, and announced only once it is
//! committed. Output keeps flowing meanwhile: nothing waits on the disk but the
//! announcement.

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::InstanceActor;
use crate::actors::Shared;
use crate::db::{instances, messages, DbError};
use crate::domain::instance::InstanceStatus;
use crate::domain::state::is_final;

/// One change to store.
pub(super) enum Write {
    Transition(instances::Transition),
    Delivered { id: Uuid, at: String, reply: Option<oneshot::Sender<String>> },
    Size { cols: u16, rows: u16 },
}

impl Write {
    fn store(&self, shared: &Shared, instance: Uuid, task: Option<i64>) -> Result<(), DbError> {
        let conn = shared.db.agents.get()?;
        match self {
            Write::Transition(record) => {
                instances::record(&conn, record)?;
                if let Some(task) = task.filter(|_| is_final(record.to)) {
                    shared.bus.follow_task(&conn, task, record.to)?;
                }
                Ok(())
            }
            Write::Delivered { id, at, .. } => messages::mark_delivered(&conn, *id, at),
            Write::Size { cols, rows } => instances::set_size(&conn, instance, *cols, *rows),
        }
    }
}

impl InstanceActor {
    /// Queues a change; it is stored after every change queued before it. A new
    /// terminal size replaces one still waiting in the queue (only the last size
    /// matters), so a burst of resizes costs one write, not one fsync each, and the
    /// queue holds at most one size besides the transitions and deliveries.
    pub(super) fn enqueue(&mut self, write: Write, ctx: &mut Context<Self>) {
        if let Write::Size { cols, rows } = write {
            if let Some(Write::Size { cols: c, rows: r }) =
                self.writes.iter_mut().find(|w| matches!(w, Write::Size { .. }))
            {
                (*c, *r) = (cols, rows);
                return;
            }
        }
        self.writes.push_back(write);
        self.pump(ctx);
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.writing {
            return;
        }
        let Some(write) = self.writes.pop_front() else { return };
        self.writing = true;
        let shared = self.shared.clone();
        let (id, task) = (self.id, self.task_id);
        let job = actix_web::web::block(move || {
            let result = write.store(&shared, id, task);
            (write, result)
        });
        ctx.spawn(job.into_actor(self).map(move |done, act, ctx| {
            act.writing = false;
            match done {
                Ok((write, result)) => {
                    if let Err(e) = result {
                        tracing::error!(instance = %act.id, error = %e, "storing an instance change failed");
                    }
                    act.announce(write, ctx);
                }
                Err(e) => tracing::error!(instance = %act.id, error = %e, "storage thread failed"),
            }
            act.pump(ctx);
            if is_final(act.status) {
                act.stop_when_written(ctx);
            }
        }));
    }

    /// Tells the world about a stored change.
    fn announce(&mut self, write: Write, ctx: &mut Context<Self>) {
        match write {
            Write::Transition(record) => {
                if let Some(started) = self.started.take() {
                    let outcome = if record.to == InstanceStatus::Active { Ok(()) } else { Err(record.reason.clone()) };
                    let _ = started.send(outcome);
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
            Write::Delivered { id: _, at, reply } => {
                if let Some(reply) = reply {
                    let _ = reply.send(at);
                }
                let _ = self.shared.message_wake.send(self.id);
            }
            Write::Size { .. } => {}
        }
    }
}
