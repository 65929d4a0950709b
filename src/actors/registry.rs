//! `Registry`: owns the set of instances. It creates instance actors, enforces
//! the global limit and each agent's `max_concurrent_instances` with a FIFO
//! queue of `idle` instances, starts the next one when a slot frees, recovers
//! after a restart, and runs the orderly shutdown.

#[path = "registry/launch.rs"]
mod launch;
#[path = "registry/prepare.rs"]
mod prepare;
#[path = "registry/unstarted.rs"]
mod unstarted;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;

use actix::prelude::*;
use uuid::Uuid;

use super::instance::Ending;
use super::Shared;
use crate::db::agents::StoredAgent;
use crate::domain::instance::EndReason;
use crate::domain::instance::Instance;
pub use launch::CreateError;

/// A request to start an instance of `agent`.
#[derive(Message)]
#[rtype(result = "Result<Instance, CreateError>")]
pub struct Create {
    pub agent: StoredAgent,
    pub prompt: Option<String>,
    pub cols: u16,
    pub rows: u16,
    pub task_id: Option<i64>,
    pub env: BTreeMap<String, String>,
    /// When false, a request beyond the limits is refused instead of queued.
    pub queue: bool,
    /// The delivery id of the inbound trigger that asked for it, recorded with the
    /// instance so that a repeat finds it.
    pub receipt: Option<String>,
    /// The ref a worktree starts from (`HEAD` when none); only for `worktree` agents.
    pub base: Option<String>,
    /// The ended instance whose conversation (and workspace) this one continues.
    pub resume: Option<Resume>,
}

/// What a resumed instance continues.
#[derive(Debug, Clone)]
pub struct Resume {
    pub from: Uuid,
    /// The agent program's own session id.
    pub session: String,
    /// The ended instance's worktree, handed over.
    pub workspace: Option<crate::domain::instance::Workspace>,
}

/// An instance actor stopped; its slot is free.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Finished {
    pub id: Uuid,
    pub agent_id: Uuid,
}

/// End one instance (queued or running); resolves once its final status is stored.
/// `false` when the registry does not know it (already ended, or never existed).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Terminate {
    pub id: Uuid,
    pub how: Ending,
}

/// End every instance of an agent (before the agent is deleted); from then on no
/// instance of it may be created, until [`KeepAgent`] says the deletion failed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TerminateAgent(pub Uuid);

/// The agent's deletion failed: it may have instances again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct KeepAgent(pub Uuid);

/// Refuse new work and end every instance (server shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// 1-based queue positions of the queued instances.
#[derive(Message)]
#[rtype(result = "HashMap<Uuid, u32>")]
pub struct QueuePositions;

/// After a restart: mark instances that were running as failed, requeue queued ones,
/// start `auto_start` agents.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Recover;

#[derive(Debug, Clone, Copy)]
struct Slot {
    agent_id: Uuid,
    /// The agent's `max_concurrent_instances` when the instance was requested.
    limit: u32,
}

/// The registry actor.
pub struct Registry {
    shared: Arc<Shared>,
    /// Threads for instance actors, used in turn.
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    global_limit: usize,
    running: HashMap<Uuid, Slot>,
    queue: VecDeque<(Uuid, Slot)>,
    closing: bool,
    promoting: bool,
    /// Agents being deleted (or deleted): creating an instance of one is refused,
    /// so none can start between ending its instances and deleting its row.
    retiring: HashSet<Uuid>,
}

impl Registry {
    /// A registry that runs instance actors on `arbiters` (at least one), in turn.
    #[must_use]
    pub fn new(shared: Arc<Shared>, arbiters: Vec<ArbiterHandle>, global_limit: usize) -> Self {
        Registry {
            shared,
            arbiters,
            next_arbiter: 0,
            global_limit,
            running: HashMap::new(),
            queue: VecDeque::new(),
            closing: false,
            promoting: false,
            retiring: HashSet::new(),
        }
    }

    fn arbiter(&mut self) -> ArbiterHandle {
        self.next_arbiter = (self.next_arbiter + 1) % self.arbiters.len().max(1);
        self.arbiters.get(self.next_arbiter).cloned().unwrap_or_else(Arbiter::current)
    }

    fn position(&self, id: Uuid) -> Option<u32> {
        let index = self.queue.iter().position(|(q, _)| *q == id)?;
        u32::try_from(index + 1).ok()
    }

    fn has_slot(&self, slot: Slot) -> bool {
        let of_agent = self.running.values().filter(|s| s.agent_id == slot.agent_id).count();
        self.running.len() < self.global_limit && of_agent < slot.limit as usize
    }

    /// Starts the first queued instance that fits; one at a time, each start
    /// triggering the next check when it is done.
    fn promote(&mut self, ctx: &mut Context<Self>) {
        if self.promoting || self.closing {
            return;
        }
        let Some(index) = self.queue.iter().position(|(_, slot)| self.has_slot(*slot)) else { return };
        let Some((id, slot)) = self.queue.remove(index) else { return };
        self.running.insert(id, slot);
        self.promoting = true;
        let started = launch::start_queued(self.shared.clone(), self.arbiter(), ctx.address(), id, slot.agent_id);
        ctx.wait(started.into_actor(self).map(move |started, act, ctx| {
            act.promoting = false;
            if !started {
                act.running.remove(&id);
            }
            act.promote(ctx);
        }));
    }

    fn end_queued(&mut self, id: Uuid, reason: EndReason) -> Option<impl Future<Output = ()>> {
        let index = self.queue.iter().position(|(q, _)| *q == id)?;
        self.queue.remove(index);
        let shared = self.shared.clone();
        let job =
            crate::db::run(&self.shared.db.agents, move |conn| unstarted::end_never_started(&shared, conn, id, reason));
        Some(async move {
            if let Err(e) = job.await {
                tracing::error!(instance = %id, error = %e, "storing the end of a queued instance failed");
            }
        })
    }

    fn end_running(&self, id: Uuid, how: Ending) -> Option<impl Future<Output = ()>> {
        self.shared.directory.end(id, how)
    }

    /// Ends the instances matching `which`: queued ones at once, running ones through their actors.
    fn end_all(&mut self, which: impl Fn(Slot) -> bool, reason: EndReason) -> ResponseActFuture<Self, ()> {
        let queued: Vec<Uuid> = self.queue.iter().filter(|(_, s)| which(*s)).map(|(id, _)| *id).collect();
        let running: Vec<Uuid> = self.running.iter().filter(|(_, s)| which(**s)).map(|(id, _)| *id).collect();
        let mut jobs: Vec<std::pin::Pin<Box<dyn Future<Output = ()>>>> = Vec::new();
        for id in queued {
            if let Some(job) = self.end_queued(id, reason) {
                jobs.push(Box::pin(job));
            }
        }
        for id in running {
            if let Some(job) = self.end_running(id, Ending::Terminate(reason)) {
                jobs.push(Box::pin(job));
            }
        }
        Box::pin(
            async move {
                for job in jobs {
                    job.await;
                }
            }
            .into_actor(self),
        )
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<Finished> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Finished, ctx: &mut Context<Self>) {
        self.running.remove(&msg.id);
        self.shared.directory.remove(msg.id);
        self.promote(ctx);
    }
}

impl Handler<Terminate> for Registry {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, msg: Terminate, _: &mut Context<Self>) -> Self::Result {
        if let Some(job) = self.end_queued(msg.id, msg.how.reason()) {
            return Box::pin(
                async move {
                    job.await;
                    true
                }
                .into_actor(self),
            );
        }
        match self.end_running(msg.id, msg.how) {
            Some(job) => Box::pin(
                async move {
                    job.await;
                    true
                }
                .into_actor(self),
            ),
            None => Box::pin(fut::ready(false)),
        }
    }
}

impl Handler<TerminateAgent> for Registry {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: TerminateAgent, _: &mut Context<Self>) -> Self::Result {
        self.retiring.insert(msg.0);
        self.end_all(|slot| slot.agent_id == msg.0, EndReason::AgentDeleted)
    }
}

impl Handler<KeepAgent> for Registry {
    type Result = ();

    fn handle(&mut self, msg: KeepAgent, _: &mut Context<Self>) {
        self.retiring.remove(&msg.0);
    }
}

impl Handler<Shutdown> for Registry {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.closing = true;
        self.end_all(|_| true, EndReason::ServerShutdown)
    }
}

impl Handler<QueuePositions> for Registry {
    type Result = MessageResult<QueuePositions>;

    fn handle(&mut self, _: QueuePositions, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.queue.iter().filter_map(|(id, _)| Some((*id, self.position(*id)?))).collect())
    }
}

impl Handler<Create> for Registry {
    type Result = AtomicResponse<Self, Result<Instance, CreateError>>;

    fn handle(&mut self, msg: Create, ctx: &mut Context<Self>) -> Self::Result {
        let slot = Slot { agent_id: msg.agent.id, limit: msg.agent.settings.max_concurrent_instances };
        if self.closing {
            return AtomicResponse::new(Box::pin(fut::err(CreateError::Closing)));
        }
        if self.retiring.contains(&slot.agent_id) {
            return AtomicResponse::new(Box::pin(fut::err(CreateError::AgentGone(slot.agent_id))));
        }
        let now = self.has_slot(slot);
        if !now && !msg.queue {
            let running = self.running.values().filter(|s| s.agent_id == slot.agent_id).count();
            return AtomicResponse::new(Box::pin(fut::err(CreateError::LimitReached {
                agent_running: running,
                agent_limit: slot.limit,
                global_running: self.running.len(),
                global_limit: self.global_limit,
            })));
        }
        let id = Uuid::new_v4();
        if now {
            self.running.insert(id, slot);
        } else {
            self.queue.push_back((id, slot));
        }
        let job = launch::create(self.shared.clone(), self.arbiter(), ctx.address(), id, now, msg);
        AtomicResponse::new(Box::pin(job.into_actor(self).map(move |mut result, act, _| {
            match result.as_mut() {
                Err(_) => {
                    act.running.remove(&id);
                    act.queue.retain(|(q, _)| *q != id);
                }
                Ok(instance) => {
                    instance.queue_position = act.position(id);
                }
            }
            result
        })))
    }
}

impl Handler<Recover> for Registry {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Recover, _: &mut Context<Self>) -> Self::Result {
        let shared = self.shared.clone();
        let job = async move { actix_web::web::block(move || unstarted::recover(&shared)).await };
        AtomicResponse::new(Box::pin(job.into_actor(self).map(|result, act, ctx| {
            let plan = match result {
                Ok(Ok(plan)) => plan,
                Ok(Err(e)) => return tracing::error!(error = %e, "recovery failed"),
                Err(e) => return tracing::error!(error = %e, "recovery failed"),
            };
            for (endpoint, id) in plan.containers {
                actix_web::rt::spawn(crate::runner::container::remove_left(endpoint, id));
            }
            for (id, agent_id, limit) in plan.queued {
                act.queue.push_back((id, Slot { agent_id, limit }));
            }
            for agent in plan.auto_start {
                ctx.notify(Create {
                    agent,
                    prompt: None,
                    cols: crate::domain::instance::DEFAULT_COLS,
                    rows: crate::domain::instance::DEFAULT_ROWS,
                    task_id: None,
                    env: BTreeMap::new(),
                    queue: true,
                    receipt: None,
                    base: None,
                    resume: None,
                });
            }
            act.promote(ctx);
        })))
    }
}
