-- agents.db, schema version 7: what a waiting instance asks, so that a client that
-- connects later (a dashboard opened while it waits) can show it.
ALTER TABLE agent_instances ADD COLUMN prompt TEXT;
