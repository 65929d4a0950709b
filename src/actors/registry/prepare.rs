//! What a start is made of: the helper it runs in (a spare, when one suits), the
//! program's command and environment, its prompt patterns, and its isolation.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::ArbiterHandle;
use regex::Regex;
use uuid::Uuid;

use crate::actors::spares::{Spare, Spares};
use crate::actors::Shared;
use crate::db::agents::StoredAgent;
use crate::db::instances::{Begun, NewInstance};
use crate::domain::instance::{Instance, InstanceStatus};
use crate::domain::integration::Integration;
use crate::domain::settings::Limits;
use crate::terminal::pty::{self, SpawnSpec};

/// A ready spare for an instance of `agent`, when one suits it (and more are
/// begun for the next starts).
pub(super) fn spare_for(shared: &Arc<Shared>, arbiter: &ArbiterHandle, agent: &StoredAgent) -> Option<Spare> {
    let settings = &agent.settings;
    let runner = crate::runner::Plan::new(&settings.runner, Limits::default(), None);
    if !Spares::suit(shared, &runner, settings.limits, &settings.sandbox) {
        return None;
    }
    let spare = shared.spares.take();
    Spares::refill(shared, arbiter);
    spare
}

/// A spare's start as it is stored with the row: its helper's pid and terminal, and
/// its isolation as its kernel granted it (said once it was ready).
pub(super) fn begun(spare: &Spare) -> Option<Begun> {
    let granted = spare.spawned.granted?;
    let isolation = serde_json::to_string(&spare.isolation.report(granted)).ok()?;
    Some(Begun { pid: spare.spawned.pid, pty: spare.spawned.pts.clone(), isolation })
}

/// Whether the instance's program will be found, and its directory entered, as
/// `execvp` in its directory with its `PATH` would (only its start in a spare,
/// stored before the command is sent, asks).
pub(super) fn will_run(
    shared: &Shared,
    agent: &StoredAgent,
    new: &NewInstance,
    env: &BTreeMap<String, String>,
) -> bool {
    let cwd = std::path::Path::new(&new.project_path);
    let program =
        crate::integration::argv(agent.settings.integration, &agent.record.command, &planned(new), &shared.hooks)
            .into_iter()
            .next()
            .unwrap_or_default();
    let executable =
        |path: &std::path::Path| path.is_file() && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok();
    if program.is_empty() || !cwd.is_dir() {
        return false;
    }
    if program.contains('/') {
        return executable(&cwd.join(&program));
    }
    let path = env.get("PATH").or_else(|| agent.record.env.get("PATH")).or_else(|| shared.base_env.get("PATH"));
    // execvp's own search path when there is no PATH.
    let path = path.map_or("/bin:/usr/bin", String::as_str);
    path.split(':').any(|dir| executable(&cwd.join(dir).join(&program)))
}

/// Makes the instance's cgroup and temporary directory and plans its sandbox
/// (off the async threads), into `spec`.
pub(super) async fn isolate(
    shared: &Arc<Shared>,
    agent: &StoredAgent,
    instance: &Instance,
    spec: &mut SpawnSpec,
) -> Result<crate::isolation::Prepared, String> {
    let job = shared.clone();
    let (id, limits, sandbox) =
        (instance.id, agent.settings.limits.or(shared.default_limits), agent.settings.sandbox.clone());
    let workspace = spec.cwd.clone();
    let repository = instance.workspace.as_ref().map(|ws| std::path::PathBuf::from(&ws.repository));
    let home = spec.env.get("HOME").map(std::path::PathBuf::from);
    let made = actix_web::rt::task::spawn_blocking(move || {
        let host = job.isolation_host();
        let of = crate::isolation::Instance {
            id,
            limits,
            sandbox: &sandbox,
            workspace: &workspace,
            repository: repository.as_deref(),
            home: home.as_deref(),
        };
        crate::isolation::prepare(&host, &of)
    })
    .await;
    let mut prepared = made.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    spec.isolation = std::mem::take(&mut prepared.plan);
    if let Some(dir) = &prepared.tmpdir {
        spec.env.insert("TMPDIR".into(), dir.display().to_string());
    }
    Ok(prepared)
}

pub(super) fn spec(
    shared: &Shared,
    agent: &StoredAgent,
    instance: &Instance,
    env: &BTreeMap<String, String>,
    token: &str,
) -> SpawnSpec {
    let limits = agent.settings.limits.or(shared.default_limits);
    let hooked = agent.settings.integration != Integration::None;
    let runner = crate::runner::Plan::new(&agent.settings.runner, limits, hooked.then(|| shared.hooks.exe.clone()));
    // A container has its image's environment: the server's own is not its business.
    let mut full = match runner {
        crate::runner::Plan::Local => shared.base_env.clone(),
        crate::runner::Plan::Container(_) => BTreeMap::new(),
    };
    full.extend(agent.record.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    full.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    full.insert("TERM".into(), "xterm-256color".into());
    full.insert("SWITCHBOARD_URL".into(), shared.base_url.clone());
    full.insert(pty::MARKER.into(), instance.id.to_string());
    full.insert("SWITCHBOARD_INSTANCE_TOKEN".into(), token.to_owned());
    SpawnSpec {
        argv: crate::integration::argv(agent.settings.integration, &agent.record.command, instance, &shared.hooks),
        cwd: instance.workspace.as_ref().map_or_else(|| instance.project_path.clone(), |ws| ws.path.clone()).into(),
        env: full,
        rows: instance.rows,
        cols: instance.cols,
        isolation: crate::isolation::HelperPlan::default(),
        runner,
    }
}

/// The agent's prompt patterns, compiled. They are checked when the agent is saved;
/// one that no longer compiles (a database from another version) is logged, not
/// silently dropped.
pub(super) fn patterns(instance: Uuid, patterns: &[String]) -> Vec<Regex> {
    patterns
        .iter()
        .filter_map(|p| {
            Regex::new(p)
                .inspect_err(|e| tracing::warn!(%instance, pattern = %p, error = %e, "prompt pattern left out: it does not compile"))
                .ok()
        })
        .collect()
}

/// The row an instance will have once stored, as its start needs it.
pub(super) fn planned(new: &NewInstance) -> Instance {
    Instance {
        id: new.id,
        agent_id: new.agent_id,
        status: InstanceStatus::Idle,
        started_at: None,
        completed_at: None,
        pty_session_id: None,
        project_path: new.project_path.clone(),
        last_activity_at: None,
        exit_code: None,
        exit_signal: None,
        status_reason: None,
        task_id: new.task_id,
        pid: None,
        queue_position: None,
        cols: new.cols,
        rows: new.rows,
        prompt: None,
        wait_id: None,
        isolation: None,
        usage: None,
        workspace: new.workspace.clone(),
        status_source: None,
        agent_session_id: new.agent_session_id.clone(),
        resumed_from: new.resumed_from,
        options: Vec::new(),
        approval: None,
    }
}
