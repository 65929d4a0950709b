use rusqlite::Connection;
use serde_json::json;

use crate::helpers::{project_dir, start, TestApp, TOKEN};
use switchboard::db::{AGENTS_MIGRATIONS, TASKS_MIGRATIONS};

fn tables(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
}

#[test]
fn each_database_file_holds_its_own_tables() {
    let app = TestApp::spawn();
    assert_eq!(tables(&app.data_dir().join("tasks.db")), ["outbox", "tasks"]);
    assert_eq!(
        tables(&app.data_dir().join("agents.db")),
        [
            "agent_instances",
            "agent_messages",
            "agent_settings",
            "agents",
            "approvals",
            "events",
            "idempotency_keys",
            "sessions",
            "trigger_receipts",
            "webhook_attempts",
            "webhook_cursor",
            "webhook_deliveries",
            "webhooks"
        ]
    );
    let conn = Connection::open(app.data_dir().join("agents.db")).expect("open");
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("pragma");
    assert_eq!(mode, "wal");
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!(version as usize, AGENTS_MIGRATIONS.len());
}

#[test]
fn data_survives_a_restart() {
    let app = TestApp::spawn();
    let dir = project_dir(&app, "p");
    let task = app.post("/api/tasks", &json!({"title": "persist me", "priority": "high"})).json();
    let agent = app.post("/api/agents", &json!({"name": "keeper", "project_path": dir, "env": {"K": "v"}})).json();
    let app = app.restart();
    assert_eq!(app.get(&format!("/api/tasks/{}", task["id"])).json(), task);
    assert_eq!(app.get(&format!("/api/agents/{}", agent["id"].as_str().expect("id"))).json(), agent);
    let next = app.post("/api/tasks", &json!({"title": "next"})).json();
    assert!(next["id"].as_i64() > task["id"].as_i64(), "ids keep increasing");
}

#[test]
fn an_old_version_database_is_upgraded_in_place() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let project = root.path().canonicalize().expect("canon").to_string_lossy().into_owned();
    {
        let conn = Connection::open(data.join("agents.db")).expect("open");
        conn.execute_batch(AGENTS_MIGRATIONS[0]).expect("v1 schema");
        conn.pragma_update(None, "user_version", 1).expect("version");
        conn.execute(
            "INSERT INTO agents (id, name, project_path, description, created_at, updated_at)
             VALUES ('5b0f5a6e-3c1b-4a57-9d3c-1f2e3d4c5b6a', 'legacy', ?1, 'from v1', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
            [&project],
        )
        .expect("v1 row");
        let conn = Connection::open(data.join("tasks.db")).expect("open");
        conn.execute_batch(TASKS_MIGRATIONS[0]).expect("tasks schema");
        conn.pragma_update(None, "user_version", 1).expect("version");
    }
    let app = TestApp::spawn_in(root, vec!["--token".into(), TOKEN.into()]);
    let agent = app.get("/api/agents/5b0f5a6e-3c1b-4a57-9d3c-1f2e3d4c5b6a");
    assert_eq!(agent.status, 200, "{}", agent.text);
    let agent = agent.json();
    assert_eq!(agent["name"], "legacy");
    assert_eq!(agent["description"], "from v1");
    assert_eq!(agent["command"], json!(["bash"]), "new columns take their defaults");
    assert_eq!(agent["settings"]["max_concurrent_instances"], 1, "a missing settings row reads as defaults");
    let updated = app.put("/api/agents/5b0f5a6e-3c1b-4a57-9d3c-1f2e3d4c5b6a", &json!({"settings": {"idle_ms": 600}}));
    assert_eq!(updated.json()["settings"]["idle_ms"], 600);
    let conn = Connection::open(app.data_dir().join("agents.db")).expect("open");
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("pragma");
    assert_eq!(version as usize, AGENTS_MIGRATIONS.len());
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    Connection::open(data.join("agents.db")).expect("open").pragma_update(None, "user_version", 99).expect("version");
    let args: Vec<String> = ["--bind", "127.0.0.1:0", "--token", TOKEN, "--data-dir", data.to_str().expect("utf-8")]
        .map(str::to_owned)
        .to_vec();
    let Err((status, log)) = start(&args, &root.path().join("log"), &[]) else { panic!("started on a newer schema") };
    assert!(!status.success());
    assert!(log.contains("newer"), "{log}");
}

#[test]
fn deleting_an_agent_cascades_to_its_instances_and_messages() {
    let app = TestApp::spawn();
    let dir = project_dir(&app, "p");
    let agent = app.post("/api/agents", &json!({"name": "parent", "project_path": dir})).json();
    let id = agent["id"].as_str().expect("id").to_owned();
    let conn = Connection::open(app.data_dir().join("agents.db")).expect("open");
    conn.busy_timeout(std::time::Duration::from_secs(10)).expect("timeout");
    conn.execute(
        "INSERT INTO agent_instances (id, agent_id, status, project_path, created_at, completed_at, exit_code)
         VALUES ('11111111-1111-4111-8111-111111111111', ?1, 'completed', ?2, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 0)",
        [&id, &dir],
    )
    .expect("instance row");
    conn.execute(
        "INSERT INTO agent_messages (id, agent_instance_id, sender_type, content, created_at)
         VALUES ('22222222-2222-4222-8222-222222222222', '11111111-1111-4111-8111-111111111111', 'agent', 'hi', '2026-01-01T00:00:00.500Z')",
        [],
    )
    .expect("message row");
    let listed = app.get(&format!("/api/agents/{id}/instances")).json();
    assert_eq!(listed[0]["id"], "11111111-1111-4111-8111-111111111111");
    assert_eq!(listed[0]["status"], "completed");
    assert_eq!(listed[0]["exit_code"], 0);

    assert_eq!(app.delete(&format!("/api/agents/{id}")).status, 204);
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).expect("count")
    };
    assert_eq!(
        (count("agents"), count("agent_settings"), count("agent_instances"), count("agent_messages")),
        (0, 0, 0, 0)
    );
}
