-- agents.db, schema version 2: the fields the v1 HTTP contract needs.
-- Existing rows keep working: every new column has a default or is nullable.
ALTER TABLE agents ADD COLUMN command TEXT NOT NULL DEFAULT '["bash"]';
ALTER TABLE agents ADD COLUMN env     TEXT NOT NULL DEFAULT '{}';

ALTER TABLE agent_settings ADD COLUMN prompt_patterns TEXT NOT NULL DEFAULT '[]';
ALTER TABLE agent_settings ADD COLUMN idle_ms         INTEGER;
ALTER TABLE agent_settings ADD COLUMN trigger_secret  TEXT;

ALTER TABLE agent_instances ADD COLUMN exit_code     INTEGER;
ALTER TABLE agent_instances ADD COLUMN exit_signal   INTEGER;
ALTER TABLE agent_instances ADD COLUMN status_reason TEXT;
ALTER TABLE agent_instances ADD COLUMN task_id       INTEGER;
ALTER TABLE agent_instances ADD COLUMN cols          INTEGER NOT NULL DEFAULT 120;
ALTER TABLE agent_instances ADD COLUMN rows          INTEGER NOT NULL DEFAULT 40;

ALTER TABLE agent_messages ADD COLUMN delivered_at TEXT;
