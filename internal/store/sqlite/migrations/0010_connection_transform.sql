-- A connection's JavaScript transformation of the requests it delivers
-- (empty: none).
ALTER TABLE connections ADD COLUMN transform TEXT NOT NULL DEFAULT '';
