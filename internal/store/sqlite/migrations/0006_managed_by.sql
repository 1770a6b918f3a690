-- Who owns each catalog entry: 'config' when the config file declares it
-- (Store.CatalogSync keeps it as the file says and removes it when the
-- file drops it), 'api' when it was created through the admin API.
-- Entries written before this migration are 'api': nothing recorded that
-- the file declared them; the next sync takes over those the file still
-- declares.
ALTER TABLE sources ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'api';
ALTER TABLE destinations ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'api';
ALTER TABLE connections ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'api';
