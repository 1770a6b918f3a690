-- Exact receipt-time ranges on requests and events without indexing every
-- row's received_at (issue 19: two B-tree inserts fewer per request).
--
-- Ids are ULIDs stamped with the receipt time or later, never earlier
-- (store.IDGenerator keeps them increasing: a request received before the
-- last id's time is stamped with that time). So the rows received at or
-- after t are in the id range from t's stamp; and the rows received before
-- t whose id is stamped at most 1 s after their receipt (sqlstore's
-- LateAfter) have ids below the stamp of t + 1 s. The others, stamped more
-- than 1 s after their receipt (a clock stepped back, a handler that
-- waited that long for the writer, rare), are marked late and are the only
-- rows indexed by received_at. The mark is written with the row
-- (sqlstore's lateFlag); the rows already here are marked below, by
-- decoding their ids' 10 time characters (Crockford base32 after the
-- 4-character prefix "req_" or "evt_") into milliseconds.
ALTER TABLE requests ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
UPDATE requests SET late = 1 WHERE ((((((((((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 5, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 6, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 7, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 8, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 9, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 10, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 12, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 13, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 14, 1)) - 1) * 1000 - received_at > 1000000;
UPDATE events SET late = 1 WHERE ((((((((((instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 5, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 6, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 7, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 8, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 9, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 10, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 11, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 12, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 13, 1)) - 1) * 32 + instr('0123456789abcdefghjkmnpqrstvwxyz', substr(id, 14, 1)) - 1) * 1000 - received_at > 1000000;
DROP INDEX requests_received;
DROP INDEX events_received;
CREATE INDEX requests_late ON requests (received_at) WHERE late = 1;
CREATE INDEX events_late ON events (received_at) WHERE late = 1;
