-- agents.db, schema version 4: the durable event log. One global sequence for
-- every change of tasks, agents, instances and messages. No foreign keys: events
-- outlive what they describe (agent.deleted).
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    type        TEXT    NOT NULL,
    agent_id    TEXT,
    instance_id TEXT,
    data        TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    -- For instance events: the transcript length when it happened.
    offset      INTEGER,
    -- For events relayed from another database: their origin, so a relay that is
    -- repeated after a crash inserts nothing twice.
    source      TEXT    UNIQUE
);
CREATE INDEX events_instance ON events (instance_id, seq);
CREATE INDEX events_agent ON events (agent_id, seq);
CREATE INDEX events_at ON events (at);
