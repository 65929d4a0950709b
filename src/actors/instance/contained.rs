//! Starting an instance in a container (the container runner). The engine's
//! work is all requests, made off the actor's thread's blocking paths; nothing
//! else of the actor runs meanwhile (`ctx.wait`), as for a local start. From
//! then on the actor treats it as any program on a terminal.

use std::fs::OpenOptions;

use actix::prelude::*;

use super::terminal::{Runs, Sink, Terminal};
use super::InstanceActor;
use crate::domain::state::Event;
use crate::runner::container;
use crate::runner::ContainerPlan;
use crate::terminal::pty::SpawnSpec;

impl InstanceActor {
    /// Makes, attaches and starts the instance's container.
    pub(super) fn start_container(&mut self, spec: SpawnSpec, plan: ContainerPlan, ctx: &mut Context<Self>) {
        let opened = OpenOptions::new().create(true).append(true).open(self.shared.transcript(self.id));
        let (transcript, len) = match opened.and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((len, file)) => (file, len),
            Err(e) => return self.start_failed(format!("spawn_failed: transcript: {e}"), ctx),
        };
        let (instance, agent) = (self.id, self.agent_id);
        let start = async move {
            let spec = container::Spec {
                instance,
                agent,
                runner: &plan.runner,
                argv: &spec.argv,
                env: spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                workspace: &spec.cwd,
                rows: spec.rows,
                cols: spec.cols,
                limits: plan.limits,
                binary: plan.binary.clone(),
            };
            container::start(spec).await
        };
        ctx.wait(start.into_actor(self).map(move |started, act, ctx| {
            let started = match started {
                Ok(started) => started,
                Err(e) => return act.start_failed(format!("spawn_failed: {e}"), ctx),
            };
            act.output.open(transcript, len, act.shared.transcript_max);
            let running = started.container;
            let sink = Sink::Container { input: started.input, container: running.clone() };
            act.terminal = Some(Terminal::new(Runs::Container(running.clone()), started.host.clone(), sink, None));
            // Its exit status is asked for once its terminal closes (`output_ended`).
            ctx.add_stream(started.output);
            act.isolation = Some(started.isolation);
            let reason = match &started.host {
                Some(host) => {
                    act.shared.running.insert(act.id, None, host.leader, act.agent_id);
                    "started"
                }
                None => "started; the engine is not on this machine: hooks and prompt patterns say when it waits",
            };
            act.transition(Event::Start, reason.to_owned(), None, ctx);
            act.arm_check(act.waiting.idle, ctx);
        }));
    }
}
