-- API tokens created through the API or CLI. Only the token's SHA-256 is
-- stored, looked up by its unique index. Times are Unix microseconds; 0
-- means never (expires_at, revoked_at, last_used_at).
CREATE TABLE tokens (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL,
    project      text NOT NULL DEFAULT '',
    hash         bytea NOT NULL,
    created_by   text NOT NULL DEFAULT '',
    created_at   bigint NOT NULL,
    expires_at   bigint NOT NULL DEFAULT 0,
    revoked_at   bigint NOT NULL DEFAULT 0,
    last_used_at bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tokens_hash ON tokens (hash);
