-- agents.db, schema version 6: outbound webhook subscriptions, their durable
-- delivery queue and attempt log, and the receipts of inbound triggers.

CREATE TABLE webhooks (
    id              TEXT    PRIMARY KEY,
    url             TEXT    NOT NULL,
    events          TEXT    NOT NULL,            -- JSON array of types, "prefix.*" or "*"
    agent_id        TEXT,                        -- only this agent's events (no cascade: the
                                                 -- subscription outlives the agent's deletion)
    secret          TEXT    NOT NULL,            -- whsec_…, needed to sign; never returned again
    active          INTEGER NOT NULL DEFAULT 1,
    format          TEXT    NOT NULL DEFAULT 'standard',
    description     TEXT    NOT NULL DEFAULT '',
    disabled_reason TEXT,
    after_seq       INTEGER NOT NULL,            -- events up to this one predate it
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- One row per (subscription, event): the outbox. Created in the same transaction
-- that moves the dispatch cursor past the event, so no event is skipped or sent twice
-- into the queue; `id` is the webhook-id header, the same on every attempt.
CREATE TABLE webhook_deliveries (
    id              TEXT    PRIMARY KEY,
    webhook_id      TEXT    NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    scheduled_from  INTEGER NOT NULL DEFAULT 0,  -- attempts made before the last (re)queue
    next_attempt_at INTEGER,                     -- Unix milliseconds, while pending
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (state, webhook_id, next_attempt_at);
CREATE INDEX webhook_deliveries_updated ON webhook_deliveries (updated_at);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT    NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    webhook_id   TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    at           TEXT    NOT NULL
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id);

-- How far the dispatcher has read the event log.
CREATE TABLE webhook_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO webhook_cursor (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM events;

-- Inbound triggers already answered: a repeated delivery id gets the first instance.
CREATE TABLE trigger_receipts (
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    delivery    TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (agent_id, delivery)
);
CREATE INDEX trigger_receipts_at ON trigger_receipts (at);
