-- agents.db, schema version 8: which environment variables a signed trigger may set
-- (none unless listed), and browser sessions with an id and an expiry checked on
-- the server, so that signing out ends one and every one can be ended at once.
ALTER TABLE agent_settings ADD COLUMN trigger_env TEXT NOT NULL DEFAULT '[]';

-- Only a hash of each session id is kept; token_tag ties a session to the token
-- it was made with, so changing the token ends every session.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    token_tag  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- How an instance's processes were contained ("pid_namespace" or "none").
ALTER TABLE agent_instances ADD COLUMN containment TEXT;
