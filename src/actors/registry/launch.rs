//! The registry's work that touches the disk or starts processes: creating
//! instance rows and starting instance actors (what a start is made of is in
//! `prepare`; ends of instances with no process, and recovery, in `unstarted`).
//! Blocking parts run on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::prepare::{begun, isolate, patterns, planned, spare_for, spec, will_run};
use super::{Create, Registry};
use crate::actors::instance::{row_stored, InstanceActor, Launch, Row, Settled};
use crate::actors::spares::Spare;
use crate::actors::Shared;
use crate::db::agents::StoredAgent;
use crate::db::instances::{self, NewInstance};
use crate::db::{self, agents, messages, DbError};
use crate::domain::instance::{Instance, InstanceStatus, Workspace};
use crate::domain::integration::Integration;
use crate::domain::message::Message;
use crate::domain::settings::WorkspaceKind;
use crate::workspace;

use crate::domain::settings::DEFAULT_IDLE_MS;

/// Why an instance was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The server is shutting down.
    #[error("the server is shutting down")]
    Closing,
    /// No free slot and queuing was refused.
    #[error("limit reached: the agent runs {agent_running} of {agent_limit} instances, the server {global_running} of {global_limit}")]
    LimitReached { agent_running: usize, agent_limit: u32, global_running: usize, global_limit: usize },
    /// The agent is being deleted.
    #[error("agent {0} is being deleted")]
    AgentGone(Uuid),
    /// The inbound trigger's delivery started an instance already.
    #[error("{0}")]
    Duplicate(String),
    /// Storage failed.
    #[error("{0}")]
    Storage(String),
}

fn storage<E: std::fmt::Display>(e: E) -> CreateError {
    CreateError::Storage(e.to_string())
}

/// Inserts the instance (and its prompt); starts it at once when a slot was free.
pub(super) async fn create(
    shared: Arc<Shared>,
    arbiter: ArbiterHandle,
    registry: Addr<Registry>,
    id: Uuid,
    start_now: bool,
    msg: Create,
) -> Result<Instance, CreateError> {
    let new = NewInstance {
        id,
        agent_id: msg.agent.id,
        project_path: msg.agent.record.project_path.clone(),
        cols: msg.cols,
        rows: msg.rows,
        task_id: msg.task_id,
        env: msg.env.clone(),
        receipt: msg.receipt.clone(),
        workspace: match &msg.resume {
            Some(resume) => resume.workspace.clone(),
            None => (msg.agent.settings.workspace == WorkspaceKind::Worktree).then(|| Workspace {
                kind: "worktree".to_owned(),
                path: shared.worktrees.join(id.to_string()).display().to_string(),
                branch: workspace::branch_name(&msg.agent.record.name, id),
                base_ref: msg.base.clone().unwrap_or_else(|| "HEAD".to_owned()),
                base_commit: None,
                repository: msg.agent.record.project_path.clone(),
            }),
        },
        // Claude Code takes a session id chosen for it; the others report theirs.
        agent_session_id: match &msg.resume {
            Some(resume) => Some(resume.session.clone()),
            None => (msg.agent.settings.integration == Integration::ClaudeCode).then(|| Uuid::new_v4().to_string()),
        },
        resumed_from: msg.resume.as_ref().map(|r| r.from),
        started: None,
    };
    let prompt = msg.prompt;
    if start_now && new.workspace.is_none() && new.resumed_from.is_none() {
        // Its helper starts while the row is inserted; the command runs once the row
        // is stored (a program may ask for its own instance at once), and not at all
        // when it cannot be (a trigger's repeated delivery, a failing disk).
        let mut new = new;
        // A helper ready already: its start is stored with the row, in one
        // transaction, when its program will be found (one that will not fails
        // `idle → error` with no pid, as ever).
        let helper = match spare_for(&shared, &arbiter, &msg.agent) {
            Some(spare) => match begun(&spare).filter(|_| will_run(&shared, &msg.agent, &new, &msg.env)) {
                Some(begun) => {
                    new.started = Some(begun);
                    Helper::Begun(spare)
                }
                None => Helper::Taken(Some(spare)),
            },
            None => Helper::Taken(None),
        };
        let instance = planned(&new);
        // The actor learns as soon as the row is readable (from the database's
        // thread), and sends the command then; the answer waits for its sync too.
        let (stored, row) = tokio::sync::watch::channel(None);
        let insert = db::run_unsynced(&shared.db.unsynced, move |unsynced| {
            let visible = move |committed| {
                let _ = stored.send(Some(committed));
            };
            unsynced.commit(|conn| instances::insert(conn, &new, prompt.as_deref()), visible)
        });
        let starting =
            start(&shared, &arbiter, registry, &msg.agent, &instance, &msg.env, Vec::new(), Some(row), helper);
        let (inserted, started) = tokio::join!(insert, starting);
        let inserted = inserted.map_err(|e| match e {
            DbError::Conflict(message) => CreateError::Duplicate(message),
            other => storage(other),
        })?;
        return match started {
            Some(Settled::Stored(Some(row))) => Ok(*row),
            // Stored as started with the row, and its program runs.
            Some(Settled::Running) => Ok(inserted),
            Some(Settled::Stored(None)) | None => read_back(&shared, id).await,
        };
    }
    let (instance, held) = db::run(&shared.db.agents, move |conn| -> Result<_, DbError> {
        let instance = instances::insert(conn, &new, prompt.as_deref())?;
        Ok((instance, messages::held(conn, id)?))
    })
    .await
    .map_err(|e| match e {
        DbError::Conflict(message) => CreateError::Duplicate(message),
        other => storage(other),
    })?;
    if !start_now {
        return Ok(instance);
    }
    match start(&shared, &arbiter, registry, &msg.agent, &instance, &msg.env, held, None, Helper::Choose).await {
        Some(Settled::Stored(Some(row))) => Ok(*row),
        _ => read_back(&shared, id).await,
    }
}

/// The helper a start runs in.
enum Helper {
    /// A spare when one suits, else its own.
    Choose,
    /// The spare taken for it already (none: its own).
    Taken(Option<Spare>),
    /// The spare its start was stored with, with its row.
    Begun(Spare),
}

/// The instance's row, read again after a start that did not hand it back.
async fn read_back(shared: &Shared, id: Uuid) -> Result<Instance, CreateError> {
    db::run(&shared.db.agents, move |conn| instances::get(conn, id))
        .await
        .map_err(storage)?
        .ok_or_else(|| CreateError::Storage("the instance vanished while starting".into()))
}

/// Starts a queued instance; `false` when it can no longer start (agent deleted,
/// instance ended meanwhile, storage failure).
pub(super) async fn start_queued(
    shared: Arc<Shared>,
    arbiter: ArbiterHandle,
    registry: Addr<Registry>,
    id: Uuid,
    agent_id: Uuid,
) -> bool {
    let loaded = db::run(&shared.db.agents, move |conn| -> Result<_, DbError> {
        let Some(agent) = agents::get(conn, agent_id)? else { return Ok(None) };
        let Some(instance) = instances::get(conn, id)? else { return Ok(None) };
        Ok(Some((agent, instance, instances::env(conn, id)?, messages::held(conn, id)?)))
    })
    .await;
    match loaded {
        Ok(Some((agent, instance, env, held))) if instance.status == InstanceStatus::Idle => {
            start(&shared, &arbiter, registry, &agent, &instance, &env, held, None, Helper::Choose).await;
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::error!(instance = %id, error = %e, "cannot load a queued instance");
            false
        }
    }
}

/// Makes an instance's worktree (taking its agent's spare when there is one) and
/// records it; then a new spare is made in the background. Git runs with no
/// database connection held: a full checkout can take seconds.
async fn make_workspace(shared: &Arc<Shared>, agent: Uuid, id: Uuid, planned: Workspace) -> Result<Workspace, String> {
    let spare = workspace::spare_path(&shared.worktrees, agent);
    let repository = std::path::PathBuf::from(&planned.repository);
    let taken = spare.clone();
    let made = actix_web::rt::task::spawn_blocking(move || workspace::create(&planned, Some(&taken))).await;
    actix_web::rt::task::spawn_blocking(move || workspace::keep_spare(&spare, &repository, true));
    let ws = match made {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    let stored = ws.clone();
    db::run(&shared.db.agents, move |conn| instances::set_workspace(conn, id, &stored))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Starts the actor and waits until its first transition (started or failed) is
/// stored; the row as stored then, when an actor ran. With `row`, the row is being
/// inserted meanwhile: nothing is stored of the instance before it is, and nothing
/// at all when it cannot be.
#[allow(clippy::too_many_arguments, reason = "the parts of one start, each used once")]
async fn start(
    shared: &Arc<Shared>,
    arbiter: &ArbiterHandle,
    registry: Addr<Registry>,
    agent: &StoredAgent,
    instance: &Instance,
    env: &BTreeMap<String, String>,
    held: Vec<Message>,
    row: Option<Row>,
    helper: Helper,
) -> Option<Settled> {
    // A start that fails before its actor runs stores the failure: once its row is.
    let settled = |row: &Option<Row>| {
        let row = row.clone();
        async move {
            if let Some(row) = row {
                row_stored(row).await;
            }
        }
    };
    let token = match shared.tokens.issue(instance.id) {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(instance = %instance.id, error = %e, "cannot issue an instance token");
            let reason = format!("spawn_failed: cannot issue an instance token: {e}");
            if let Helper::Taken(Some(spare)) | Helper::Begun(spare) = helper {
                spare.discard();
            }
            settled(&row).await;
            return not_started(shared, &registry, agent.id, instance.id, reason).await;
        }
    };
    // A worktree is made when the instance starts (not when it is queued), from
    // its base as it is then.
    let mut instance = instance.clone();
    if let Some(planned) = instance.workspace.clone().filter(|ws| ws.base_commit.is_none()) {
        let id = instance.id;
        let made = make_workspace(shared, agent.id, id, planned).await;
        match made {
            Ok(ws) => instance.workspace = Some(ws),
            Err(why) => {
                tracing::warn!(instance = %id, error = %why, "cannot make the instance's worktree");
                let reason = format!("spawn_failed: workspace: {why}");
                settled(&row).await;
                return not_started(shared, &registry, agent.id, id, reason).await;
            }
        }
    }
    let instance = &instance;
    let mut spec = spec(shared, agent, instance, env, &token);
    // A helper made ready ahead of need, when this instance's needs nothing of its
    // own; it runs on the spare's arbiter. Another is made for the next start.
    let settings = &agent.settings;
    let (spare, begun) = match helper {
        Helper::Choose => (spare_for(shared, arbiter, agent), false),
        Helper::Taken(spare) => (spare, false),
        Helper::Begun(spare) => (Some(spare), true),
    };
    let (mut arbiter, mut ready) = (arbiter.clone(), None);
    let isolated = match (spare, &spec.runner) {
        (Some(spare), _) => {
            arbiter = spare.arbiter;
            ready = Some(spare.spawned);
            Ok(spare.isolation)
        }
        (None, crate::runner::Plan::Local) => isolate(shared, agent, instance, &mut spec).await,
        (None, crate::runner::Plan::Container(_)) => Ok(crate::isolation::Prepared::nothing()),
    };
    let prepared = match isolated {
        Ok(prepared) => prepared,
        Err(why) => {
            tracing::warn!(instance = %instance.id, error = %why, "cannot prepare the instance's isolation");
            let reason = format!("spawn_failed: isolation: {why}");
            settled(&row).await;
            return not_started(shared, &registry, agent.id, instance.id, reason).await;
        }
    };
    let (started, outcome) = oneshot::channel();
    let known: std::collections::HashSet<Uuid> = held.iter().map(|m| m.id).collect();
    let launch = Launch {
        id: instance.id,
        agent_id: agent.id,
        spec,
        ready,
        isolation: prepared,
        idle: Duration::from_millis(u64::from(settings.idle_ms.unwrap_or(DEFAULT_IDLE_MS))),
        patterns: patterns(instance.id, &settings.prompt_patterns),
        held,
        task_id: instance.task_id,
        registry,
        shared: shared.clone(),
        started,
        begun,
        row: row.clone(),
    };
    let addr = InstanceActor::launch(&arbiter, launch);
    shared.directory.insert(instance.id, addr.clone());
    if let Some(row) = row {
        if !row_stored(row).await {
            return outcome.await.ok();
        }
    }
    // A reply stored after the held messages were read but before the actor joined
    // the directory found no actor to hand it to: read them again now that it has
    // joined, and hand over any it did not get (it types each message once).
    let id = instance.id;
    match db::run(&shared.db.agents, move |conn| messages::held(conn, id)).await {
        Ok(held) => {
            for message in held.into_iter().filter(|m| !known.contains(&m.id)) {
                addr.do_send(crate::actors::instance::Deliver { message, now: false });
            }
        }
        Err(e) => tracing::warn!(instance = %id, error = %e, "cannot read the held messages again"),
    }
    outcome.await.ok()
}

/// No actor will run: stores the failure and frees the slot here, or the instance
/// would stay idle and its slot counted for ever. No row: the caller reads it.
async fn not_started(
    shared: &Arc<Shared>,
    registry: &Addr<Registry>,
    agent: Uuid,
    id: Uuid,
    reason: String,
) -> Option<Settled> {
    let job = shared.clone();
    let stored =
        db::run(&shared.db.agents, move |conn| super::unstarted::fail_unstarted(&job, conn, id, &reason)).await;
    if stored.is_err() {
        tracing::error!(instance = %id, "cannot store that the instance failed to start");
    }
    shared.tokens.revoke(id);
    registry.do_send(super::Finished { id, agent_id: agent });
    None
}
