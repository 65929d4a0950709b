-- agents.db, schema version 10: limits and sandbox. An agent's settings carry
-- its limits and sandbox (JSON); an instance records how it was isolated once it
-- started (JSON: containment, limits, sandbox and the limits applied) and what it
-- used when it ended (JSON: memory_bytes, cpu_seconds, pids).
ALTER TABLE agent_settings ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agent_settings ADD COLUMN sandbox TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agent_instances ADD COLUMN isolation TEXT;
ALTER TABLE agent_instances ADD COLUMN usage TEXT;
