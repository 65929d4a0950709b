-- agents.db, schema version 13: the choices a waiting instance offers (JSON array),
-- set with its wait (an agent's question's options; allow and deny for a permission
-- request) and cleared when it stops waiting.
ALTER TABLE agent_instances ADD COLUMN options TEXT;
