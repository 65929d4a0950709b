//! The `agents` and `agent_settings` tables of `agents.db`.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::events::{append, NewEvent};
use super::{is_unique_violation, write_tx, DbError, Page};
use crate::domain::agent::{Agent, AgentChange, AgentRecord};
use crate::domain::event::Payload;
use crate::domain::integration::Integration;
use crate::domain::now;
use crate::domain::settings::{SettingsRecord, WorkspaceKind};

/// An agent as stored: its own fields and its settings, trigger secret included.
#[derive(Debug, Clone)]
pub struct StoredAgent {
    pub id: Uuid,
    pub record: AgentRecord,
    pub settings: SettingsRecord,
    pub created_at: String,
    pub updated_at: String,
}

impl StoredAgent {
    /// What clients may see (no secret).
    #[must_use]
    pub fn public(&self) -> Agent {
        let r = &self.record;
        Agent {
            id: self.id,
            name: r.name.clone(),
            project_path: r.project_path.clone(),
            description: r.description.clone(),
            command: r.command.clone(),
            env: r.env.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            settings: self.settings.public(),
        }
    }
}

/// Agents as last read, for the path that reads one on every request (starting an
/// instance), so that it does not wait for the database. Every change to an agent
/// forgets it once committed; a read that began before a change is not kept.
#[derive(Debug, Default)]
pub struct Known {
    /// Changes counted so far, and the agents read since the last change to each.
    inner: std::sync::Mutex<(u64, std::collections::HashMap<Uuid, StoredAgent>)>,
}

impl Known {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, std::collections::HashMap<Uuid, StoredAgent>)> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The agent as last read, if it has not changed since.
    fn get(&self, id: Uuid) -> Option<StoredAgent> {
        self.lock().1.get(&id).cloned()
    }

    /// Where the count of changes stands: taken before a read, given to [`Known::keep`].
    fn mark(&self) -> u64 {
        self.lock().0
    }

    /// Keeps what a read that began at `mark` found, unless an agent changed since.
    fn keep(&self, mark: u64, agent: &StoredAgent) {
        let mut inner = self.lock();
        if inner.0 == mark {
            inner.1.insert(agent.id, agent.clone());
        }
    }

    /// The agent, from memory when it has not changed since it was last read,
    /// else from `pool` (and kept); `None` if there is no such agent.
    ///
    /// # Errors
    /// The database's.
    pub async fn read(&self, pool: &super::Pool, id: Uuid) -> Result<Option<StoredAgent>, DbError> {
        if let Some(agent) = self.get(id) {
            return Ok(Some(agent));
        }
        let mark = self.mark();
        let agent = super::run(pool, move |conn| get(conn, id)).await?;
        if let Some(agent) = &agent {
            self.keep(mark, agent);
        }
        Ok(agent)
    }

    /// Forgets an agent that changed (or went): called after the change committed.
    pub fn forget(&self, id: Uuid) {
        let mut inner = self.lock();
        inner.0 = inner.0.wrapping_add(1);
        inner.1.remove(&id);
    }
}

// Settings rows may be missing in databases written by early versions: LEFT JOIN
// with the defaults.
const SELECT: &str = "SELECT a.id, a.name, a.project_path, a.description, a.command, a.env,
        a.created_at, a.updated_at,
        COALESCE(s.auto_start, 0), COALESCE(s.notification_enabled, 1),
        COALESCE(s.max_concurrent_instances, 1), COALESCE(s.prompt_patterns, '[]'),
        s.idle_ms, COALESCE(s.settings_json, '{}'), s.trigger_secret, COALESCE(s.trigger_env, '[]'),
        COALESCE(s.workspace, 'shared'), COALESCE(s.limits, '{}'), COALESCE(s.sandbox, '{}'),
        COALESCE(s.integration, 'none'), COALESCE(s.approvals, '[]'),
        COALESCE(s.runner, '{\"kind\":\"local\"}')
     FROM agents a LEFT JOIN agent_settings s ON s.agent_id = a.id";

fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e)))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredAgent> {
    let id: String = row.get(0)?;
    let id = Uuid::parse_str(&id)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(StoredAgent {
        id,
        record: AgentRecord {
            name: row.get(1)?,
            project_path: row.get(2)?,
            description: row.get(3)?,
            command: json(row, 4)?,
            env: json(row, 5)?,
        },
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
        settings: SettingsRecord {
            auto_start: row.get(8)?,
            notification_enabled: row.get(9)?,
            max_concurrent_instances: row.get(10)?,
            prompt_patterns: json(row, 11)?,
            idle_ms: row.get(12)?,
            settings_json: json(row, 13)?,
            trigger_secret: row.get(14)?,
            trigger_env: json(row, 15)?,
            workspace: super::enum_column(row, 16, WorkspaceKind::parse)?,
            limits: json(row, 17)?,
            sandbox: json(row, 18)?,
            integration: super::enum_column(row, 19, Integration::parse)?,
            approvals: json(row, 20)?,
            runner: json(row, 21)?,
        },
    })
}

fn conflict_on_name(name: &str) -> impl FnOnce(rusqlite::Error) -> DbError + '_ {
    move |e| {
        if is_unique_violation(&e) {
            DbError::Conflict(format!("an agent named {name:?} already exists"))
        } else {
            DbError::Sqlite(e)
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn save_settings(conn: &Connection, id: &str, s: &SettingsRecord) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO agent_settings (agent_id, auto_start, notification_enabled, max_concurrent_instances,
                prompt_patterns, idle_ms, settings_json, trigger_secret, trigger_env, workspace, limits, sandbox,
                integration, approvals, runner)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (agent_id) DO UPDATE SET auto_start = ?2, notification_enabled = ?3,
                max_concurrent_instances = ?4, prompt_patterns = ?5, idle_ms = ?6,
                settings_json = ?7, trigger_secret = ?8, trigger_env = ?9, workspace = ?10,
                limits = ?11, sandbox = ?12, integration = ?13, approvals = ?14, runner = ?15",
        params![
            id,
            s.auto_start,
            s.notification_enabled,
            s.max_concurrent_instances,
            to_json(&s.prompt_patterns),
            s.idle_ms,
            to_json(&s.settings_json),
            s.trigger_secret,
            to_json(&s.trigger_env),
            s.workspace.as_str(),
            to_json(&s.limits),
            to_json(&s.sandbox),
            s.integration.as_str(),
            to_json(&s.approvals),
            to_json(&s.runner)
        ],
    )?;
    Ok(())
}

/// Inserts a validated agent with its settings.
///
/// # Errors
/// [`DbError::Conflict`] for a duplicate name; SQLite failures.
pub fn insert(conn: &mut Connection, record: &AgentRecord, settings: &SettingsRecord) -> Result<StoredAgent, DbError> {
    let id = Uuid::new_v4().to_string();
    let tx = write_tx(conn)?;
    tx.execute(
        "INSERT INTO agents (id, name, project_path, description, command, env, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            id,
            record.name,
            record.project_path,
            record.description,
            to_json(&record.command),
            to_json(&record.env),
            now()
        ],
    )
    .map_err(conflict_on_name(&record.name))?;
    save_settings(&tx, &id, settings)?;
    let agent = fetch(&tx, &id)?.ok_or_else(|| DbError::Corrupt("agents (row vanished)".into()))?;
    announce(&tx, true, &agent)?;
    tx.commit()?;
    Ok(agent)
}

fn fetch(conn: &Connection, id: &str) -> Result<Option<StoredAgent>, DbError> {
    let sql = format!("{SELECT} WHERE a.id = ?1");
    Ok(conn.query_row(&sql, [id], from_row).optional()?)
}

/// One agent.
///
/// # Errors
/// SQLite failures.
pub fn get(conn: &Connection, id: Uuid) -> Result<Option<StoredAgent>, DbError> {
    fetch(conn, &id.to_string())
}

/// Every agent's id.
///
/// # Errors
/// SQLite failures.
pub fn ids(conn: &Connection) -> Result<Vec<Uuid>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM agents")?;
    let rows = stmt.query_map([], |r| super::instances::uuid_column(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every agent's name, by id.
///
/// # Errors
/// SQLite failures.
pub fn names(conn: &Connection) -> Result<std::collections::HashMap<Uuid, String>, DbError> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM agents")?;
    let rows = stmt.query_map([], |r| Ok((super::instances::uuid_column(r, 0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The name of the agent with this id (as stored), if it still exists.
///
/// # Errors
/// SQLite failures.
pub fn name_of(conn: &Connection, id: &str) -> Result<Option<String>, DbError> {
    Ok(conn.query_row("SELECT name FROM agents WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}

/// The agent with this name.
///
/// # Errors
/// SQLite failures.
pub fn by_name(conn: &Connection, name: &str) -> Result<Option<StoredAgent>, DbError> {
    let sql = format!("{SELECT} WHERE a.name = ?1");
    Ok(conn.query_row(&sql, [name], from_row).optional()?)
}

/// Agents, newest first.
///
/// # Errors
/// SQLite failures.
pub fn list(conn: &Connection, page: Page) -> Result<Vec<StoredAgent>, DbError> {
    let sql = format!("{SELECT} ORDER BY a.created_at DESC, a.rowid DESC LIMIT ?1 OFFSET ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![page.limit, page.offset], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Applies a validated change (settings merged); `None` if there is no such agent.
///
/// # Errors
/// [`DbError::Conflict`] for a name another agent has; SQLite failures.
pub fn update(conn: &mut Connection, id: Uuid, mut change: AgentChange) -> Result<Option<StoredAgent>, DbError> {
    let id = id.to_string();
    let tx = write_tx(conn)?;
    let Some(mut agent) = fetch(&tx, &id)? else {
        return Ok(None);
    };
    agent.record.apply(&mut change);
    if let Some(patch) = change.settings.take() {
        agent.settings.apply(patch);
    }
    let r = &agent.record;
    tx.execute(
        "UPDATE agents SET name = ?1, project_path = ?2, description = ?3, command = ?4, env = ?5,
                updated_at = ?6 WHERE id = ?7",
        params![r.name, r.project_path, r.description, to_json(&r.command), to_json(&r.env), now(), id],
    )
    .map_err(conflict_on_name(&r.name))?;
    save_settings(&tx, &id, &agent.settings)?;
    let agent = fetch(&tx, &id)?;
    if let Some(agent) = &agent {
        announce(&tx, false, agent)?;
    }
    tx.commit()?;
    Ok(agent)
}

/// Deletes an agent; its settings, instances and messages go with it (cascade).
/// `false` if there was none.
///
/// # Errors
/// SQLite failures.
pub fn delete(conn: &mut Connection, id: Uuid) -> Result<bool, DbError> {
    let tx = write_tx(conn)?;
    let deleted = tx.execute("DELETE FROM agents WHERE id = ?1", [id.to_string()])? > 0;
    if deleted {
        let event =
            NewEvent { payload: Payload::AgentDeleted { id }, agent_id: Some(id), instance_id: None, offset: None };
        append(&tx, &event)?;
    }
    tx.commit()?;
    Ok(deleted)
}

fn announce(conn: &Connection, created: bool, agent: &StoredAgent) -> Result<(), DbError> {
    let public = agent.public();
    let payload =
        if created { Payload::AgentCreated { agent: &public } } else { Payload::AgentUpdated { agent: &public } };
    append(conn, &NewEvent { payload, agent_id: Some(agent.id), instance_id: None, offset: None })?;
    Ok(())
}
