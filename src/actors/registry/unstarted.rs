//! Ends stored for instances that have no process: a start that failed before its
//! program ran, a queued instance ended before it started, and the instances a
//! stopped server left running (recovery after a restart).

use nix::sys::signal::Signal;
use uuid::Uuid;

use crate::actors::Shared;
use crate::db::agents::StoredAgent;
use crate::db::instances::{self, Transition};
use crate::db::{self, agents, DbError};
use crate::domain::instance::{EndReason, InstanceStatus};
use crate::domain::integration::ApprovalStatus;
use crate::domain::state::{self, Event};
use crate::terminal::pty;

/// Stores that an instance failed before it got a process (and fails its task).
pub(super) fn fail_unstarted(
    shared: &Shared,
    conn: &rusqlite::Connection,
    id: Uuid,
    reason: &str,
) -> Result<(), DbError> {
    let Some(instance) = instances::get(conn, id)? else { return Ok(()) };
    let Ok(to) = state::next(instance.status, Event::Fail) else { return Ok(()) };
    end(shared, conn, &instance.id, instance.agent_id, instance.status, to, reason)
}

/// Stores the end of an instance that never got a process (and fails its task).
///
/// # Errors
/// Storage failures.
pub(super) fn end_never_started(
    shared: &Shared,
    conn: &rusqlite::Connection,
    id: Uuid,
    reason: EndReason,
) -> Result<(), DbError> {
    let Some(instance) = instances::get(conn, id)? else { return Ok(()) };
    let Ok(to) = state::next(instance.status, Event::Terminate) else { return Ok(()) };
    end(shared, conn, &instance.id, instance.agent_id, instance.status, to, reason.as_str())
}

fn end(
    shared: &Shared,
    conn: &rusqlite::Connection,
    id: &Uuid,
    agent_id: Uuid,
    from: InstanceStatus,
    to: InstanceStatus,
    reason: &str,
) -> Result<(), DbError> {
    let record = Transition::new(*id, agent_id, from, to, reason.to_owned());
    instances::record(conn, &record)?;
    if let Some(task) = instances::task_of(conn, *id)? {
        shared.bus.follow_task(conn, task, to)?;
    }
    Ok(())
}

/// What to do after a restart.
pub(super) struct RecoveryPlan {
    /// Queued instances, oldest first, with their agent and its limit.
    pub queued: Vec<(Uuid, Uuid, u32)>,
    /// Agents to start one instance of.
    pub auto_start: Vec<StoredAgent>,
    /// Containers the stale instances may have left, by engine endpoint.
    pub containers: Vec<(String, Uuid)>,
}

/// Marks instances that were running when the server died as `error`
/// (`server_restart`), kills whatever of them survived, and plans the rest.
///
/// # Errors
/// Storage failures.
pub(super) fn recover(shared: &Shared) -> Result<RecoveryPlan, DbError> {
    let mut conn = shared.db.agents.get()?;
    let stale = instances::with_status(&conn, &[InstanceStatus::Active, InstanceStatus::AwaitingInput])?;
    let mut containers = Vec::new();
    for (id, agent_id, from) in &stale {
        if let Some(crate::domain::runner::Runner::Container(runner)) =
            agents::get(&conn, *agent_id)?.map(|agent| agent.settings.runner)
        {
            containers.push((crate::runner::container::endpoint(&runner), *id));
        }
        end(shared, &conn, id, *agent_id, *from, InstanceStatus::Error, EndReason::ServerRestart.as_str())?;
        // Nobody holds its permission requests open any more.
        db::approvals::close_pending(&mut conn, *id, ApprovalStatus::Withdrawn, "server restart")?;
    }
    if !stale.is_empty() {
        tracing::warn!(count = stale.len(), "instances that were running when the server stopped are marked error");
        let ids: Vec<String> = stale.iter().map(|(id, ..)| id.to_string()).collect();
        let leftovers: Vec<i32> = pty::marked_processes()
            .into_iter()
            .filter(|(_, marker)| ids.contains(marker))
            .map(|(pid, _)| pid)
            .collect();
        pty::signal_each(&leftovers, Signal::SIGKILL);
    }
    shared.bus.relay_tasks_with(&conn)?;
    let mut queued = Vec::new();
    for (id, agent_id, _) in instances::with_status(&conn, &[InstanceStatus::Idle])? {
        let limit = agents::get(&conn, agent_id)?.map_or(1, |a| a.settings.max_concurrent_instances);
        queued.push((id, agent_id, limit));
    }
    let all = agents::list(&conn, crate::db::Page { limit: u32::MAX, offset: 0 })?;
    let auto_start = all.into_iter().filter(|a| a.settings.auto_start).collect();
    Ok(RecoveryPlan { queued, auto_start, containers })
}
