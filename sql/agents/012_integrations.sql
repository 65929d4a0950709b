-- agents.db, schema version 12: coding agents as Switchboard knows them. An agent's
-- settings say how its program reports beyond the terminal (integration) and which
-- permission requests rules decide (approvals, JSON). An instance records the
-- agent's own session id (to resume it) and the instance it resumed. Approvals are
-- the permission requests agents made and what became of them.
ALTER TABLE agent_settings ADD COLUMN integration TEXT NOT NULL DEFAULT 'none';
ALTER TABLE agent_settings ADD COLUMN approvals TEXT NOT NULL DEFAULT '[]';
ALTER TABLE agent_instances ADD COLUMN agent_session_id TEXT;
ALTER TABLE agent_instances ADD COLUMN resumed_from TEXT;

CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES agent_instances (id) ON DELETE CASCADE,
    agent_id    TEXT NOT NULL,
    tool_name   TEXT NOT NULL,
    tool_input  TEXT NOT NULL,
    question    TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    decided_by  TEXT,
    message     TEXT,
    created_at  TEXT NOT NULL,
    decided_at  TEXT
);
CREATE INDEX approvals_of_instance ON approvals (instance_id, created_at);
CREATE INDEX approvals_pending ON approvals (instance_id) WHERE status = 'pending';
