-- agents.db, schema version 3: per-instance environment overrides, kept so a
-- queued instance starts with them even after a restart.
ALTER TABLE agent_instances ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
CREATE INDEX agent_messages_held ON agent_messages (agent_instance_id) WHERE delivered_at IS NULL AND sender_type = 'user';
