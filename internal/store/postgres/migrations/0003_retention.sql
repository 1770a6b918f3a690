-- Indexes for Store.Prune: finished deliveries by age, attempts by age.
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE status <> 'pending';
CREATE INDEX attempts_started ON attempts (started_at);
