-- agents.db, schema version 5: answers to POSTs sent with an Idempotency-Key,
-- replayed to repeats of the same key for 24 hours.
CREATE TABLE idempotency_keys (
    scope      TEXT    NOT NULL,  -- method and path
    key        TEXT    NOT NULL,
    status     INTEGER,           -- NULL while the first request is being answered
    body       BLOB,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
