-- tasks.db, schema version 2: task events wait here, written in the same
-- transaction as the task change, until they are relayed into agents.db's log.
CREATE TABLE outbox (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    at   TEXT NOT NULL
);
