-- The audit log: who changed what, with the target's state before and
-- after (redacted). Ids are time-sortable; at is Unix microseconds.
CREATE TABLE audit (
    id       TEXT PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    token_id TEXT NOT NULL DEFAULT '',
    role     TEXT NOT NULL DEFAULT '',
    project  TEXT NOT NULL DEFAULT '',
    action   TEXT NOT NULL,
    target   TEXT NOT NULL DEFAULT '',
    status   INTEGER NOT NULL DEFAULT 0,
    before_state BLOB,
    after_state  BLOB
);
CREATE INDEX audit_at ON audit (at);
