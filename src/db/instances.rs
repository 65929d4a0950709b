//! The `agent_instances` table of `agents.db`.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::events::{append, NewEvent};
use super::{enum_column, messages, write_tx, DbError, Page};
use crate::domain::event::{Payload, StatusChange};
use crate::domain::instance::{source_of, Instance, InstanceStatus, Workspace};
use crate::domain::message::{Message, Sender};
use crate::domain::now;
use crate::domain::state::is_final;
use crate::isolation::Isolation;

const COLUMNS: &str = "id, agent_id, status, started_at, completed_at, pty_session_id, project_path,
     last_activity_at, exit_code, exit_signal, status_reason, task_id, pid, cols, rows, prompt, containment,
     workspace, isolation, usage, wait_id, agent_session_id, resumed_from, options";

/// The pending permission request of the instance (as JSON), after `COLUMNS` in reads.
const APPROVAL: &str = "(SELECT json_object('id', a.id, 'instance_id', a.instance_id, 'agent_id', a.agent_id,
        'tool_name', a.tool_name, 'tool_input', json(a.tool_input), 'question', a.question, 'status', a.status,
        'decided_by', a.decided_by, 'message', a.message, 'created_at', a.created_at, 'decided_at', a.decided_at)
     FROM approvals a WHERE a.instance_id = agent_instances.id AND a.status = 'pending'
     ORDER BY a.created_at DESC LIMIT 1)";

/// Parses a UUID stored as text.
///
/// # Errors
/// Text that is not a UUID (a corrupt row).
pub fn uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(index)?;
    Uuid::parse_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e)))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Instance> {
    Ok(Instance {
        id: uuid_column(row, 0)?,
        agent_id: uuid_column(row, 1)?,
        status: enum_column(row, 2, InstanceStatus::parse)?,
        started_at: row.get(3)?,
        completed_at: row.get(4)?,
        pty_session_id: row.get(5)?,
        project_path: row.get(6)?,
        last_activity_at: row.get(7)?,
        exit_code: row.get(8)?,
        exit_signal: row.get(9)?,
        status_reason: row.get(10)?,
        task_id: row.get(11)?,
        pid: row.get(12)?,
        queue_position: None,
        cols: row.get(13)?,
        rows: row.get(14)?,
        prompt: row.get(15)?,
        isolation: isolation_column(row, 18, 16)?,
        usage: json_column(row, 19)?,
        wait_id: row.get(20)?,
        workspace: json_column::<Workspace>(row, 17)?,
        status_source: row.get::<_, Option<String>>(10)?.as_deref().and_then(source_of).map(str::to_owned),
        agent_session_id: row.get(21)?,
        resumed_from: row.get::<_, Option<String>>(22)?.and_then(|s| Uuid::parse_str(&s).ok()),
        options: json_column(row, 23)?.unwrap_or_default(),
        approval: json_column(row, 24)?,
    })
}

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>> {
    let Some(text) = row.get::<_, Option<String>>(index)? else { return Ok(None) };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e)))
}

/// The stored isolation; rows written before it was recorded say only whether a
/// PID namespace held the instance (`containment`).
fn isolation_column(row: &Row<'_>, index: usize, legacy: usize) -> rusqlite::Result<Option<Isolation>> {
    if let Some(isolation) = json_column(row, index)? {
        return Ok(Some(isolation));
    }
    let old: Option<String> = row.get(legacy)?;
    Ok(old.map(|old| Isolation {
        containment: if old == "pid_namespace" { "pidns" } else { "session" }.to_owned(),
        limits: "none".to_owned(),
        sandbox: "none".to_owned(),
        applied: crate::domain::settings::Limits::default(),
        unenforced: Vec::new(),
    }))
}

/// The stored form of a workspace (with its repository, which clients are not shown).
fn workspace_json(ws: &Workspace) -> String {
    serde_json::json!({
        "kind": ws.kind, "path": ws.path, "branch": ws.branch, "base_ref": ws.base_ref,
        "base_commit": ws.base_commit, "repository": ws.repository,
    })
    .to_string()
}

/// Records the worktree an instance now has.
///
/// # Errors
/// SQLite failures.
pub fn set_workspace(conn: &Connection, id: Uuid, ws: &Workspace) -> Result<(), DbError> {
    conn.execute(
        "UPDATE agent_instances SET workspace = ?1 WHERE id = ?2",
        params![workspace_json(ws), id.to_string()],
    )?;
    Ok(())
}

/// Instances that have a workspace, as (id, workspace).
///
/// # Errors
/// SQLite failures.
pub fn workspaces(conn: &Connection) -> Result<Vec<(Uuid, Workspace)>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT id, workspace FROM agent_instances WHERE workspace IS NOT NULL")?;
    let rows = stmt.query_map([], |r| Ok((uuid_column(r, 0)?, json_column::<Workspace>(r, 1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        if let (id, Some(ws)) = row? {
            out.push((id, ws));
        }
    }
    Ok(out)
}

/// A new instance row (always created `idle`; its actor moves it on).
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub project_path: String,
    pub cols: u16,
    pub rows: u16,
    pub task_id: Option<i64>,
    pub env: BTreeMap<String, String>,
    /// The inbound trigger's delivery id, recorded in the same transaction.
    pub receipt: Option<String>,
    /// The worktree planned for it (made when it starts), or the one it takes over
    /// from the instance it resumes.
    pub workspace: Option<Workspace>,
    /// The agent program's session id, when Switchboard chooses it or resumes one.
    pub agent_session_id: Option<String>,
    /// The ended instance it resumes (its worktree moves to this one).
    pub resumed_from: Option<Uuid>,
    /// Its start, stored with the row (`idle` then `active`, in one transaction),
    /// when its helper was ready before the row: the command is sent once stored.
    pub started: Option<Begun>,
}

/// A start known before its command runs: the ready helper's pid and terminal,
/// and its isolation (JSON).
#[derive(Debug, Clone)]
pub struct Begun {
    pub pid: i32,
    pub pty: String,
    pub isolation: String,
}

/// Inserts an instance and, if given, its prompt as the first held user message.
///
/// # Errors
/// SQLite failures (e.g. the agent was deleted meanwhile: a foreign key error).
pub fn insert(conn: &mut Connection, new: &NewInstance, prompt: Option<&str>) -> Result<Instance, DbError> {
    let tx = write_tx(conn)?;
    let at = now();
    let env = serde_json::to_string(&new.env).unwrap_or_else(|_| "{}".to_owned());
    let sql = format!(
        "INSERT INTO agent_instances (id, agent_id, status, project_path, cols, rows, task_id, env, created_at, workspace,
             agent_session_id, resumed_from)
         VALUES (?1, ?2, 'idle', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING {COLUMNS}, NULL"
    );
    let id = new.id.to_string();
    let workspace = new.workspace.as_ref().map(workspace_json);
    let resumed_from = new.resumed_from.map(|r| r.to_string());
    if let (Some(from), Some(_)) = (&resumed_from, &workspace) {
        // The worktree moves to the instance that continues the work.
        tx.execute("UPDATE agent_instances SET workspace = NULL WHERE id = ?1", [from])?;
    }
    let instance = tx.query_row(
        &sql,
        params![
            id,
            new.agent_id.to_string(),
            new.project_path,
            new.cols,
            new.rows,
            new.task_id,
            env,
            at,
            workspace,
            new.agent_session_id,
            resumed_from
        ],
        from_row,
    )?;
    let event = NewEvent {
        payload: Payload::InstanceCreated { instance: &instance },
        agent_id: Some(new.agent_id),
        instance_id: Some(new.id),
        offset: Some(0),
    };
    append(&tx, &event)?;
    if let Some(delivery) = &new.receipt {
        super::triggers::insert_receipt(&tx, new.agent_id, delivery, new.id)?;
    }
    if let Some(prompt) = prompt {
        let message = Message {
            id: Uuid::new_v4(),
            agent_instance_id: new.id,
            sender_type: Sender::User,
            content: prompt.to_owned(),
            requires_user_input: false,
            options: Vec::new(),
            created_at: at,
            delivered_at: None,
        };
        messages::insert_within(&tx, &message, new.agent_id)?;
    }
    let instance = match &new.started {
        Some(begun) => {
            let started = Transition {
                pid: Some(begun.pid),
                pty: Some(begun.pty.clone()),
                isolation: Some(begun.isolation.clone()),
                offset: Some(0),
                ..Transition::new(new.id, new.agent_id, InstanceStatus::Idle, InstanceStatus::Active, "started".into())
            };
            record_within(&tx, &started)?;
            get(&tx, new.id)?.ok_or_else(|| DbError::Corrupt("agent_instances: the row just inserted".into()))?
        }
        None => instance,
    };
    tx.commit()?;
    Ok(instance)
}

/// One instance.
///
/// # Errors
/// SQLite failures.
pub fn get(conn: &Connection, id: Uuid) -> Result<Option<Instance>, DbError> {
    let sql = format!("SELECT {COLUMNS}, {APPROVAL} FROM agent_instances WHERE id = ?1");
    Ok(conn.query_row(&sql, [id.to_string()], from_row).optional()?)
}

/// The per-instance environment overrides.
///
/// # Errors
/// SQLite failures or a corrupt value.
pub fn env(conn: &Connection, id: Uuid) -> Result<BTreeMap<String, String>, DbError> {
    let text: String =
        conn.query_row("SELECT env FROM agent_instances WHERE id = ?1", [id.to_string()], |r| r.get(0))?;
    serde_json::from_str(&text).map_err(|_| DbError::Corrupt("agent_instances.env".into()))
}

/// Filters of an instance list.
#[derive(Debug, Default, Clone, Copy)]
pub struct Filter {
    pub status: Option<InstanceStatus>,
    pub agent_id: Option<Uuid>,
}

/// Instances matching `filter`, newest first.
///
/// # Errors
/// SQLite failures.
pub fn list(conn: &Connection, filter: Filter, page: Page) -> Result<Vec<Instance>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS}, {APPROVAL} FROM agent_instances
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR agent_id = ?2)
         ORDER BY created_at DESC, rowid DESC LIMIT ?3 OFFSET ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let status = filter.status.map(InstanceStatus::as_str);
    let agent = filter.agent_id.map(|a| a.to_string());
    let rows = stmt.query_map(params![status, agent, page.limit, page.offset], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A stored change of status.
#[derive(Debug, Clone)]
pub struct Transition {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub from: InstanceStatus,
    pub to: InstanceStatus,
    pub reason: String,
    pub at: String,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    /// Set when the process started.
    pub pid: Option<i32>,
    pub pty: Option<String>,
    /// Set when the process started: how it is isolated (JSON).
    pub isolation: Option<String>,
    /// Set when it ended: what it used (JSON).
    pub usage: Option<String>,
    /// For `awaiting_input`: the id of this wait (a new one each time it starts waiting).
    pub wait_id: Option<String>,
    /// For `awaiting_input`: what the program asks.
    pub prompt: Option<String>,
    /// For `awaiting_input`: the choices it offers.
    pub options: Vec<String>,
    /// The transcript length when it happened.
    pub offset: Option<u64>,
}

impl Transition {
    /// A change of status now, with nothing else to record.
    #[must_use]
    pub fn new(id: Uuid, agent_id: Uuid, from: InstanceStatus, to: InstanceStatus, reason: String) -> Self {
        Transition {
            id,
            agent_id,
            from,
            to,
            reason,
            at: now(),
            exit_code: None,
            exit_signal: None,
            pid: None,
            pty: None,
            isolation: None,
            usage: None,
            wait_id: None,
            prompt: None,
            options: Vec::new(),
            offset: None,
        }
    }
}

/// Stores a transition (status, reason, time; start and end times; exit details)
/// with its `instance.status` event.
///
/// # Errors
/// SQLite failures.
pub fn record(conn: &Connection, t: &Transition) -> Result<(), DbError> {
    let tx = conn.unchecked_transaction()?;
    record_within(&tx, t)?;
    tx.commit()?;
    Ok(())
}

/// [`record`], within the caller's transaction.
fn record_within(tx: &Connection, t: &Transition) -> Result<(), DbError> {
    let started = (t.to == InstanceStatus::Active && t.pid.is_some()).then_some(&t.at);
    let completed = is_final(t.to).then_some(&t.at);
    tx.execute(
        "UPDATE agent_instances SET status = ?1, status_reason = ?2, last_activity_at = ?3,
                started_at = COALESCE(?4, started_at), completed_at = COALESCE(?5, completed_at),
                exit_code = COALESCE(?6, exit_code), exit_signal = COALESCE(?7, exit_signal),
                pid = COALESCE(?8, pid), pty_session_id = COALESCE(?9, pty_session_id), prompt = ?11,
                isolation = COALESCE(?12, isolation), usage = COALESCE(?13, usage), wait_id = ?14,
                options = ?15
         WHERE id = ?10",
        params![
            t.to.as_str(),
            t.reason,
            t.at,
            started,
            completed,
            t.exit_code,
            t.exit_signal,
            t.pid,
            t.pty,
            t.id.to_string(),
            if t.to == InstanceStatus::AwaitingInput { t.prompt.as_deref() } else { None },
            t.isolation,
            t.usage,
            if t.to == InstanceStatus::AwaitingInput { t.wait_id.as_deref() } else { None },
            (t.to == InstanceStatus::AwaitingInput && !t.options.is_empty())
                .then(|| serde_json::to_string(&t.options).unwrap_or_else(|_| "[]".to_owned()))
        ],
    )?;
    let workspace = tx
        .query_row("SELECT workspace FROM agent_instances WHERE id = ?1", [t.id.to_string()], |r| {
            json_column::<Workspace>(r, 0)
        })
        .optional()?
        .flatten();
    let change = StatusChange {
        workspace,
        instance_id: t.id,
        agent_id: t.agent_id,
        status: t.to,
        previous: t.from,
        reason: t.reason.clone(),
        exit_code: t.exit_code,
        prompt: t.prompt.clone(),
        at: t.at.clone(),
        wait_id: if t.to == InstanceStatus::AwaitingInput { t.wait_id.clone() } else { None },
        source: source_of(&t.reason).map(str::to_owned),
        options: if t.to == InstanceStatus::AwaitingInput { t.options.clone() } else { Vec::new() },
    };
    let event = NewEvent {
        payload: Payload::InstanceStatus(&change),
        agent_id: Some(t.agent_id),
        instance_id: Some(t.id),
        offset: t.offset,
    };
    append(tx, &event)?;
    Ok(())
}

/// Records the agent program's own session id (reported by its hooks or notify).
///
/// # Errors
/// SQLite failures.
pub fn set_agent_session(conn: &Connection, id: Uuid, session: &str) -> Result<(), DbError> {
    conn.execute(
        "UPDATE agent_instances SET agent_session_id = ?1 WHERE id = ?2 AND agent_session_id IS NOT ?1",
        params![session, id.to_string()],
    )?;
    Ok(())
}

/// Stores a new terminal size.
///
/// # Errors
/// SQLite failures.
pub fn set_size(conn: &Connection, id: Uuid, cols: u16, rows: u16) -> Result<(), DbError> {
    conn.execute("UPDATE agent_instances SET cols = ?1, rows = ?2 WHERE id = ?3", params![cols, rows, id.to_string()])?;
    Ok(())
}

/// Instances in the given statuses, oldest first, as (id, agent id, status).
///
/// # Errors
/// SQLite failures.
pub fn with_status(
    conn: &Connection,
    statuses: &[InstanceStatus],
) -> Result<Vec<(Uuid, Uuid, InstanceStatus)>, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, agent_id FROM agent_instances WHERE status = ?1 ORDER BY created_at, rowid")?;
    let mut out = Vec::new();
    for status in statuses {
        let rows = stmt.query_map([status.as_str()], |r| Ok((uuid_column(r, 0)?, uuid_column(r, 1)?, *status)))?;
        out.extend(rows.collect::<Result<Vec<_>, _>>()?);
    }
    Ok(out)
}

/// The task an instance works on.
///
/// # Errors
/// SQLite failures.
pub fn task_of(conn: &Connection, id: Uuid) -> Result<Option<i64>, DbError> {
    Ok(conn
        .query_row("SELECT task_id FROM agent_instances WHERE id = ?1", [id.to_string()], |r| r.get(0))
        .optional()?
        .flatten())
}

/// The ids of an agent's instances (to remove their files with the agent).
///
/// # Errors
/// SQLite failures.
pub fn ids_of_agent(conn: &Connection, agent_id: Uuid) -> Result<Vec<Uuid>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM agent_instances WHERE agent_id = ?1")?;
    let rows = stmt.query_map([agent_id.to_string()], |r| uuid_column(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every instance of an agent.
///
/// # Errors
/// SQLite failures.
pub fn list_of_agent(conn: &Connection, agent_id: Uuid) -> Result<Vec<Instance>, DbError> {
    let sql = format!("SELECT {COLUMNS}, {APPROVAL} FROM agent_instances WHERE agent_id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([agent_id.to_string()], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes an instance and its messages; `false` if there was none.
///
/// # Errors
/// SQLite failures.
pub fn delete(conn: &Connection, id: Uuid) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM agent_instances WHERE id = ?1", [id.to_string()])? > 0)
}
