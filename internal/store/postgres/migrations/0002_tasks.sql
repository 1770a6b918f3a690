-- MCP tasks. Times are Unix microseconds; durations are microseconds too.
CREATE TABLE tasks (
    id             text PRIMARY KEY,
    owner          text NOT NULL,
    session_id     text NOT NULL DEFAULT '',
    protocol       text NOT NULL DEFAULT '',
    tool           text NOT NULL,
    arguments      bytea,
    status         text NOT NULL,
    status_message text NOT NULL DEFAULT '',
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL,
    ttl            bigint NOT NULL DEFAULT 0,
    expires_at     bigint NOT NULL DEFAULT 0,
    poll_interval  bigint NOT NULL DEFAULT 0,
    result         bytea,
    error          bytea,
    wait_source    text NOT NULL DEFAULT '',
    wait_type      text NOT NULL DEFAULT '',
    wait_filter    text NOT NULL DEFAULT '',
    wait_since     bigint NOT NULL DEFAULT 0,
    wait_deadline  bigint NOT NULL DEFAULT 0,
    event_id       text NOT NULL DEFAULT ''
);
CREATE INDEX tasks_owner ON tasks (owner, id);
CREATE INDEX tasks_open ON tasks (status, wait_source) WHERE status IN ('working', 'input_required');
CREATE INDEX tasks_expires ON tasks (expires_at) WHERE expires_at > 0;
