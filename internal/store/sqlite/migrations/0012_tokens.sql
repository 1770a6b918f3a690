-- API tokens created through the API or CLI. Only the token's SHA-256 is
-- stored, looked up by its unique index. Times are Unix microseconds; 0
-- means never (expires_at, revoked_at, last_used_at).
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    project      TEXT NOT NULL DEFAULT '',
    hash         BLOB NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tokens_hash ON tokens (hash);
