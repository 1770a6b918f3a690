-- MCP tasks. Times are Unix microseconds; durations are microseconds too.
CREATE TABLE tasks (
    id             TEXT PRIMARY KEY,
    owner          TEXT NOT NULL,
    session_id     TEXT NOT NULL DEFAULT '',
    protocol       TEXT NOT NULL DEFAULT '',
    tool           TEXT NOT NULL,
    arguments      BLOB,
    status         TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    ttl            INTEGER NOT NULL DEFAULT 0,
    expires_at     INTEGER NOT NULL DEFAULT 0,
    poll_interval  INTEGER NOT NULL DEFAULT 0,
    result         BLOB,
    error          BLOB,
    wait_source    TEXT NOT NULL DEFAULT '',
    wait_type      TEXT NOT NULL DEFAULT '',
    wait_filter    TEXT NOT NULL DEFAULT '',
    wait_since     INTEGER NOT NULL DEFAULT 0,
    wait_deadline  INTEGER NOT NULL DEFAULT 0,
    event_id       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tasks_owner ON tasks (owner, id);
CREATE INDEX tasks_open ON tasks (status, wait_source) WHERE status IN ('working', 'input_required');
CREATE INDEX tasks_expires ON tasks (expires_at) WHERE expires_at > 0;
