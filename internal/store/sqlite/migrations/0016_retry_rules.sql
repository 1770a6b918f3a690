-- A connection's retry rules by event type (JSON array of store.RetryRule;
-- empty: the destination's retry policy for every event).
ALTER TABLE connections ADD COLUMN retry TEXT NOT NULL DEFAULT '';
-- The retry policy that decided what became of a delivery after its last
-- attempt, and what it decided (JSON store.RetryApplied; empty before the
-- first attempt is recorded).
ALTER TABLE deliveries ADD COLUMN retry TEXT NOT NULL DEFAULT '';
