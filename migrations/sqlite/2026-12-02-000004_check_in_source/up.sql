-- Where a check-in came from: the patient's app, or a history import from the clinic's earlier
-- system (with that system's label). Every check-in stored so far came from the app.
ALTER TABLE check_ins ADD COLUMN source TEXT NOT NULL DEFAULT 'app' CHECK (source IN ('app', 'import'));
ALTER TABLE check_ins ADD COLUMN imported_from TEXT;
