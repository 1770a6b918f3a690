-- Why an accepted event has no dedup key although its source has a key
-- expression (the expression failed, or yielded a number that is not an
-- exact integer): the event was accepted without deduplication, and this
-- says so. Empty when the key was computed, or the source has none.
ALTER TABLE events ADD COLUMN dedup_error text NOT NULL DEFAULT '';
