-- Times are Unix microseconds (INTEGER); 0 means unset.
CREATE TABLE requests (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    query       TEXT NOT NULL DEFAULT '',
    headers     BLOB,
    body        BLOB,
    remote_addr TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    http_status INTEGER NOT NULL DEFAULT 0,
    event_id    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX requests_source ON requests (source, id);
CREATE INDEX requests_received ON requests (received_at);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    type        TEXT NOT NULL DEFAULT '',
    dedup_key   TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    deliveries  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_source ON events (source, id);
CREATE INDEX events_received ON events (received_at);

-- One row per (source, key) while the key's window lasts. The primary key is
-- what makes concurrent duplicates collide.
CREATE TABLE dedup (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (source, key)
) WITHOUT ROWID;
CREATE INDEX dedup_expires ON dedup (expires_at);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    source          TEXT NOT NULL,
    destination     TEXT NOT NULL,
    connection_id   TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    last_status     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_due ON deliveries (destination, status, next_attempt_at);
CREATE INDEX deliveries_dest ON deliveries (destination, status, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    destination      TEXT NOT NULL,
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ms      REAL NOT NULL,
    status_code      INTEGER NOT NULL DEFAULT 0,
    response_headers BLOB,
    response_body    BLOB,
    error            TEXT NOT NULL DEFAULT '',
    success          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, number);

CREATE TABLE sources (
    name       TEXT PRIMARY KEY,
    spec       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE destinations (
    name         TEXT PRIMARY KEY,
    spec         BLOB NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    paused_at    INTEGER NOT NULL DEFAULT 0,
    pause_reason TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE connections (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    destination TEXT NOT NULL,
    filter      TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
