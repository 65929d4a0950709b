//! The `tasks` table of `tasks.db`.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::events::append_task;
use super::{enum_column, write_tx, DbError, Page};
use crate::domain::event::Payload;
use crate::domain::now;
use crate::domain::task::{NewTask, Priority, Task, TaskPatch, TaskStatus};

const COLUMNS: &str = "id, title, description, status, priority, created_at, updated_at";

/// Filters of a task list.
#[derive(Debug, Default, Clone, Copy)]
pub struct Filter {
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: row.get(0)?,
        title: row.get(1)?,
        description: row.get(2)?,
        status: enum_column(row, 3, TaskStatus::parse)?,
        priority: enum_column(row, 4, Priority::parse)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

/// Inserts a validated task (and queues `task.created`).
///
/// # Errors
/// SQLite failures.
pub fn insert(conn: &mut Connection, task: &NewTask) -> Result<Task, DbError> {
    let at = now();
    let sql = format!(
        "INSERT INTO tasks (title, description, status, priority, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING {COLUMNS}"
    );
    let status = task.status.unwrap_or(TaskStatus::Pending).as_str();
    let priority = task.priority.unwrap_or(Priority::Medium).as_str();
    let tx = write_tx(conn)?;
    let task = tx.query_row(&sql, params![task.title, task.description, status, priority, at], from_row)?;
    append_task(&tx, &Payload::TaskCreated { task: &task })?;
    tx.commit()?;
    Ok(task)
}

/// One task.
///
/// # Errors
/// SQLite failures.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Task>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], from_row).optional()?)
}

/// Tasks matching `filter`, newest first.
///
/// # Errors
/// SQLite failures.
pub fn list(conn: &Connection, filter: Filter, page: Page) -> Result<Vec<Task>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR priority = ?2)
         ORDER BY id DESC LIMIT ?3 OFFSET ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let status = filter.status.map(TaskStatus::as_str);
    let priority = filter.priority.map(Priority::as_str);
    let rows = stmt.query_map(params![status, priority, page.limit, page.offset], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Applies a validated partial update; `None` if there is no such task.
///
/// # Errors
/// SQLite failures.
pub fn update(conn: &mut Connection, id: i64, patch: &TaskPatch) -> Result<Option<Task>, DbError> {
    let tx = write_tx(conn)?;
    let sql = format!(
        "UPDATE tasks SET title = COALESCE(?1, title), description = COALESCE(?2, description),
                status = COALESCE(?3, status), priority = COALESCE(?4, priority), updated_at = ?5
         WHERE id = ?6 RETURNING {COLUMNS}"
    );
    let status = patch.status.map(TaskStatus::as_str);
    let priority = patch.priority.map(Priority::as_str);
    let task = tx
        .query_row(&sql, params![patch.title, patch.description, status, priority, now(), id], from_row)
        .optional()?;
    if let Some(task) = &task {
        append_task(&tx, &Payload::TaskUpdated { task })?;
    }
    tx.commit()?;
    Ok(task)
}

/// Deletes a task (and queues `task.deleted`); `false` if there was none.
///
/// # Errors
/// SQLite failures.
pub fn delete(conn: &mut Connection, id: i64) -> Result<bool, DbError> {
    let tx = write_tx(conn)?;
    let deleted = tx.execute("DELETE FROM tasks WHERE id = ?1", [id])? > 0;
    if deleted {
        append_task(&tx, &Payload::TaskDeleted { id })?;
    }
    tx.commit()?;
    Ok(deleted)
}

/// Moves a task along with the instance working on it: `in_progress` while it
/// runs, `done` when it completed, `failed` otherwise. `None` if the task is gone.
///
/// # Errors
/// SQLite failures.
pub fn follow(conn: &mut Connection, id: i64, status: TaskStatus) -> Result<Option<Task>, DbError> {
    update(conn, id, &TaskPatch { status: Some(status), ..TaskPatch::default() })
}
