-- agents.db, schema version 11: what a waiting instance waits on. wait_id is set
-- (a new UUID) each time an instance starts waiting and cleared when it stops, so a
-- reply can name the question it answers.
ALTER TABLE agent_instances ADD COLUMN wait_id TEXT;
