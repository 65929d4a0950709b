//! Following the event log. Events are rows of `agents.db` (see `db::events`),
//! committed with the change they report; SQLite's own hooks say "something new was
//! committed" (`db::signal`), and each follower ([`Follow`]) reads what is new from
//! the database after its own cursor. So a follower that reconnects, falls behind
//! or outlives a server restart loses nothing and sees nothing twice, and the
//! server holds no per-follower backlog in memory.

mod follow;

pub use follow::{Follow, Stopped};

use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

use crate::db::events::Filter;
use crate::db::{events, tasks, Databases, DbError};
use crate::domain::instance::InstanceStatus;
use crate::domain::task::TaskStatus;

/// Hands out followers of the log; tells them when the server stops; relays task events.
pub struct Bus {
    db: Databases,
    stopping: watch::Sender<bool>,
    relay: Mutex<()>,
}

impl Bus {
    /// A bus over these databases.
    #[must_use]
    pub fn new(db: Databases) -> Self {
        Bus { db, stopping: watch::channel(false).0, relay: Mutex::new(()) }
    }

    /// Follows the events after `cursor` that match `filter`.
    #[must_use]
    pub fn follow(&self, filter: Filter, cursor: i64) -> Follow {
        Follow::new(self.db.agents.clone(), self.db.committed.log(), self.stopping(), filter, cursor)
    }

    /// A receiver that changes whenever a delivery was queued or a subscription changed.
    #[must_use]
    pub fn deliveries(&self) -> watch::Receiver<u64> {
        self.db.committed.queue()
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

    /// Moves queued task events into the log. Blocking.
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
        events::relay_tasks(&tasks, agents)
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
        {
            let mut conn = self.db.tasks.get()?;
            tasks::follow(&mut conn, task_id, TaskStatus::following(instance))?;
        }
        self.relay_tasks_with(agents)?;
        Ok(())
    }
}
