//! Instances: one run of an agent's command in its own pseudo-terminal.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Invalid;

/// A new instance's terminal width when none is asked for.
pub const DEFAULT_COLS: u16 = 120;
/// A new instance's terminal height when none is asked for.
pub const DEFAULT_ROWS: u16 = 40;

/// Where an instance stands; see the state machine in docs/api.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    Idle,
    Active,
    AwaitingInput,
    Completed,
    Error,
    Terminated,
}

impl InstanceStatus {
    /// Every status, in state-machine order.
    pub const ALL: [InstanceStatus; 6] = [
        InstanceStatus::Idle,
        InstanceStatus::Active,
        InstanceStatus::AwaitingInput,
        InstanceStatus::Completed,
        InstanceStatus::Error,
        InstanceStatus::Terminated,
    ];

    /// The stored and serialized form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Idle => "idle",
            InstanceStatus::Active => "active",
            InstanceStatus::AwaitingInput => "awaiting_input",
            InstanceStatus::Completed => "completed",
            InstanceStatus::Error => "error",
            InstanceStatus::Terminated => "terminated",
        }
    }

    /// Parses the stored or query-string form.
    ///
    /// # Errors
    /// An unknown value, naming the accepted ones.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
            Invalid::new("status", format!("unknown value {text:?}; expected one of {}", names.join(", ")))
        })
    }
}

/// Why an instance was ended other than by its own program exiting: its
/// `status_reason` (and the `reason` of its last `instance.status` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `POST /api/instances/:id/terminate`.
    User,
    /// `DELETE /api/instances/:id` of an instance that still ran.
    Deleted,
    /// Its agent was deleted.
    AgentDeleted,
    /// The server shut down.
    ServerShutdown,
    /// It ran when the server died; found at the next start (ends it `error`).
    ServerRestart,
    /// The agent said it is done (`POST …/messages` with `complete`).
    AgentComplete,
}

impl EndReason {
    /// The stored form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::User => "user",
            EndReason::Deleted => "deleted",
            EndReason::AgentDeleted => "agent_deleted",
            EndReason::ServerShutdown => "server_shutdown",
            EndReason::ServerRestart => "server_restart",
            EndReason::AgentComplete => "agent_complete",
        }
    }
}

/// What a status change was learnt from, read from its reason: `hook` (the agent's
/// hooks or notify program), `agent` (an agent message), `kernel`, `pattern`,
/// `input` or `output`; `None` for starts and ends.
#[must_use]
pub fn source_of(reason: &str) -> Option<&'static str> {
    let head = reason.split(':').next().unwrap_or("");
    match head {
        "hook" => Some("hook"),
        "agent_message" => Some("agent"),
        "kernel" => Some("kernel"),
        "pattern" => Some("pattern"),
        "input" | "message_delivered" => Some("input"),
        "output" => Some("output"),
        _ => None,
    }
}

/// Where an instance works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    /// `worktree` (the only kind recorded; `shared` instances have no workspace).
    pub kind: String,
    /// The worktree's directory.
    pub path: String,
    /// The branch made for it, `switchboard/<agent-name>/<short-instance-id>`.
    pub branch: String,
    /// The ref asked for (`HEAD` when none was).
    pub base_ref: String,
    /// The commit the branch started from; null until the worktree is made.
    pub base_commit: Option<String>,
    /// The repository it belongs to (the agent's `project_path`).
    #[serde(skip_serializing)]
    #[serde(default)]
    pub repository: String,
}

/// An instance as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Instance {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub status: InstanceStatus,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub pty_session_id: Option<String>,
    pub project_path: String,
    pub last_activity_at: Option<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub status_reason: Option<String>,
    pub task_id: Option<i64>,
    pub pid: Option<i32>,
    /// 1-based place in the queue while `idle`, otherwise null.
    pub queue_position: Option<u32>,
    pub cols: u16,
    pub rows: u16,
    /// While `awaiting_input`: what the program asks (as in its `instance.status` event).
    pub prompt: Option<String>,
    /// While `awaiting_input`: the id of this wait, new each time it starts waiting;
    /// a reply may name it (`in_reply_to`) so that it is never typed into a later question.
    pub wait_id: Option<String>,
    /// How it is isolated, once started: containment, limits and sandbox, each
    /// as the kernel granted it.
    pub isolation: Option<crate::isolation::Isolation>,
    /// What its processes use: now while it runs, at its end once ended (null
    /// before it started, and for instances that ended before this was recorded).
    pub usage: Option<crate::isolation::Usage>,
    /// Its git worktree, when its agent's `workspace` is `worktree`; null when it
    /// runs in the agent's `project_path`.
    pub workspace: Option<Workspace>,
    /// What its last status change was learnt from (see `instance.status`'s `source`).
    pub status_source: Option<String>,
    /// The agent program's own session id (Claude Code's `session_id`, Codex's
    /// thread id), which `resume` continues.
    pub agent_session_id: Option<String>,
    /// The instance this one resumed.
    pub resumed_from: Option<Uuid>,
    /// While `awaiting_input`: the choices it offers (its question's options; `allow` and
    /// `deny` for a permission request); empty otherwise.
    pub options: Vec<String>,
    /// The permission request it waits on, if any (decide it with `POST /api/approvals/:id`).
    pub approval: Option<super::integration::Approval>,
}
