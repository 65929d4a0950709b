-- agents.db, schema version 1: the original agent domain.
CREATE TABLE agents (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    project_path TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE agent_settings (
    agent_id                 TEXT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    auto_start               INTEGER NOT NULL DEFAULT 0,
    notification_enabled     INTEGER NOT NULL DEFAULT 1,
    max_concurrent_instances INTEGER NOT NULL DEFAULT 1,
    settings_json            TEXT    NOT NULL DEFAULT '{}'
);

CREATE TABLE agent_instances (
    id               TEXT PRIMARY KEY,
    agent_id         TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'idle',
    started_at       TEXT,
    completed_at     TEXT,
    pty_session_id   TEXT,
    project_path     TEXT NOT NULL,
    last_activity_at TEXT,
    pid              INTEGER,
    created_at       TEXT NOT NULL
);
CREATE INDEX agent_instances_agent ON agent_instances (agent_id);
CREATE INDEX agent_instances_status ON agent_instances (status);

CREATE TABLE agent_messages (
    id                  TEXT PRIMARY KEY,
    agent_instance_id   TEXT NOT NULL REFERENCES agent_instances (id) ON DELETE CASCADE,
    sender_type         TEXT NOT NULL CHECK (sender_type IN ('user', 'agent')),
    content             TEXT NOT NULL,
    requires_user_input INTEGER NOT NULL DEFAULT 0,
    options             TEXT NOT NULL DEFAULT '[]',
    created_at          TEXT NOT NULL
);
CREATE INDEX agent_messages_instance ON agent_messages (agent_instance_id, created_at);
