-- agents.db, schema version 14: where an agent's instances run (JSON): a local
-- process on a PTY, or a container through a Docker Engine API endpoint.
ALTER TABLE agent_settings ADD COLUMN runner TEXT NOT NULL DEFAULT '{"kind":"local"}';
