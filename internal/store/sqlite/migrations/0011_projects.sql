-- Projects (issue 18). Every catalog entry and every row that flows
-- through one belongs to a project: the project of its source or
-- destination, which is also the prefix of their full name ("acme/stripe";
-- default-project names have none, so every row written before this
-- migration is in 'default'). Rows carry the project as a column so that
-- a project's lists are an index range, not a join or a LIKE on names.
ALTER TABLE sources ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE destinations ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE connections ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE requests ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE events ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE deliveries ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE attempts ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
ALTER TABLE tasks ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
-- A project's lists, newest first (ids sort by time; tasks by creation).
CREATE INDEX requests_project ON requests (project, id);
CREATE INDEX events_project ON events (project, id);
CREATE INDEX deliveries_project ON deliveries (project, id);
CREATE INDEX tasks_project_created ON tasks (project, created_at, id);
