-- What is kept of a request refused before it was verified: its body is
-- stored only up to a prefix, so the full size and the SHA-256 of the whole
-- body are recorded beside it.
ALTER TABLE requests ADD COLUMN body_size bigint NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN body_sha256 text NOT NULL DEFAULT '';
