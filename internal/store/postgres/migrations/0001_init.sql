-- The same tables and columns as the SQLite driver's schema. Times are Unix
-- microseconds (bigint), 0 meaning unset, so both drivers share one notion
-- of time and one precision.
CREATE TABLE requests (
    id          text PRIMARY KEY,
    source      text NOT NULL,
    received_at bigint NOT NULL,
    method      text NOT NULL,
    path        text NOT NULL,
    query       text NOT NULL DEFAULT '',
    headers     bytea,
    body        bytea,
    remote_addr text NOT NULL DEFAULT '',
    status      text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    http_status integer NOT NULL DEFAULT 0,
    event_id    text NOT NULL DEFAULT ''
);
CREATE INDEX requests_source ON requests (source, id);
CREATE INDEX requests_received ON requests (received_at);

CREATE TABLE events (
    id          text PRIMARY KEY,
    source      text NOT NULL,
    request_id  text NOT NULL,
    received_at bigint NOT NULL,
    type        text NOT NULL DEFAULT '',
    dedup_key   text NOT NULL DEFAULT '',
    status      text NOT NULL,
    deliveries  integer NOT NULL DEFAULT 0
);
CREATE INDEX events_source ON events (source, id);
CREATE INDEX events_received ON events (received_at);

-- One row per (source, key) while the key's window lasts. The primary key is
-- what makes concurrent duplicates collide, on every instance.
CREATE TABLE dedup (
    source     text NOT NULL,
    key        text NOT NULL,
    event_id   text NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX dedup_expires ON dedup (expires_at);

CREATE TABLE deliveries (
    id              text PRIMARY KEY,
    event_id        text NOT NULL,
    request_id      text NOT NULL,
    source          text NOT NULL,
    destination     text NOT NULL,
    connection_id   text NOT NULL DEFAULT '',
    status          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL,
    last_error      text NOT NULL DEFAULT '',
    last_status     integer NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_due ON deliveries (destination, status, next_attempt_at);
CREATE INDEX deliveries_dest ON deliveries (destination, status, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    id               text PRIMARY KEY,
    delivery_id      text NOT NULL,
    event_id         text NOT NULL,
    destination      text NOT NULL,
    number           integer NOT NULL,
    started_at       bigint NOT NULL,
    duration_ms      double precision NOT NULL,
    status_code      integer NOT NULL DEFAULT 0,
    response_headers bytea,
    response_body    bytea,
    error            text NOT NULL DEFAULT '',
    success          boolean NOT NULL DEFAULT false
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, number);

CREATE TABLE sources (
    name       text PRIMARY KEY,
    spec       bytea NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE TABLE destinations (
    name         text PRIMARY KEY,
    spec         bytea NOT NULL,
    paused       boolean NOT NULL DEFAULT false,
    paused_at    bigint NOT NULL DEFAULT 0,
    pause_reason text NOT NULL DEFAULT '',
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL
);

CREATE TABLE connections (
    id          text PRIMARY KEY,
    source      text NOT NULL,
    destination text NOT NULL,
    filter      text NOT NULL DEFAULT '',
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);
