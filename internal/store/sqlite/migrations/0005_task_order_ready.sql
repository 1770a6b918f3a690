-- Tasks are listed newest first by creation time (their ids are random),
-- per owner or for everyone.
DROP INDEX tasks_owner;
CREATE INDEX tasks_owner_created ON tasks (owner, created_at, id);
CREATE INDEX tasks_created ON tasks (created_at, id);
-- One row per running store, rewritten by the readiness probe: a real
-- write that fails when nothing can be persisted.
CREATE TABLE ready_probe (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL
);
