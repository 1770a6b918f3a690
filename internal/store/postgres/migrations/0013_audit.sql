-- The audit log: who changed what, with the target's state before and
-- after (redacted). Ids are time-sortable; at is Unix microseconds.
CREATE TABLE audit (
    id       text PRIMARY KEY,
    at       bigint NOT NULL,
    actor    text NOT NULL,
    token_id text NOT NULL DEFAULT '',
    role     text NOT NULL DEFAULT '',
    project  text NOT NULL DEFAULT '',
    action   text NOT NULL,
    target   text NOT NULL DEFAULT '',
    status   bigint NOT NULL DEFAULT 0,
    before_state bytea,
    after_state  bytea
);
CREATE INDEX audit_at ON audit (at);
