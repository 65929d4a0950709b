//! The event bus. Events are rows of `agents.db` (see `db::events`), committed
//! with the change they report; the bus only says "something new was committed"
//! (a counter in a watch channel), and each subscriber reads what is new from the
//! database after its own cursor. So a subscriber that reconnects, falls behind
//! or outlives a server restart loses nothing and sees nothing twice, and the
//! server holds no per-subscriber backlog in memory.

use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

use crate::db::{events, tasks, Databases, DbError};
use crate::domain::instance::InstanceStatus;
use crate::domain::task::TaskStatus;

/// Wakes subscribers after commits; tells streams when the server stops.
pub struct Bus {
    db: Databases,
    wake: watch::Sender<u64>,
    stopping: watch::Sender<bool>,
    relay: Mutex<()>,
}

impl Bus {
    /// A bus over these databases.
    #[must_use]
    pub fn new(db: Databases) -> Self {
        Bus { db, wake: watch::channel(0).0, stopping: watch::channel(false).0, relay: Mutex::new(()) }
    }

    /// Call after committing events: subscribers read what is new.
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever events were committed.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Ends every open stream (server shutdown).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// A receiver that turns true when the server stops.
    #[must_use]
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Moves queued task events into the log and wakes subscribers. Blocking.
    ///
    /// # Errors
    /// Storage failures; what was not moved is moved by the next relay.
    pub fn relay_tasks(&self) -> Result<usize, DbError> {
        let agents = self.db.agents.get()?;
        self.relay_tasks_with(&agents)
    }

    /// [`Bus::relay_tasks`] with an `agents.db` connection the caller holds already.
    /// Connections are always taken in one order, `agents.db` then `tasks.db`, and
    /// nobody holding one waits for a second of the same pool: with a handful of
    /// writers at once (instances ending at shutdown) the pools cannot run dry.
    ///
    /// # Errors
    /// Storage failures; what was not moved is moved by the next relay.
    pub fn relay_tasks_with(&self, agents: &rusqlite::Connection) -> Result<usize, DbError> {
        let _one_at_a_time = self.relay.lock().unwrap_or_else(PoisonError::into_inner);
        let tasks = self.db.tasks.get()?;
        let moved = events::relay_tasks(&tasks, agents)?;
        if moved > 0 {
            self.wake();
        }
        Ok(moved)
    }

    /// Moves a task along with the instance working on it, with the `agents.db`
    /// connection the caller stored the instance's change with. Blocking.
    ///
    /// # Errors
    /// Storage failures.
    pub fn follow_task(
        &self,
        agents: &rusqlite::Connection,
        task_id: i64,
        instance: InstanceStatus,
    ) -> Result<(), DbError> {
        let status = match instance {
            InstanceStatus::Idle | InstanceStatus::Active | InstanceStatus::AwaitingInput => TaskStatus::InProgress,
            InstanceStatus::Completed => TaskStatus::Done,
            InstanceStatus::Error | InstanceStatus::Terminated => TaskStatus::Failed,
        };
        {
            let mut conn = self.db.tasks.get()?;
            tasks::follow(&mut conn, task_id, status)?;
        }
        self.relay_tasks_with(agents)?;
        Ok(())
    }
}
