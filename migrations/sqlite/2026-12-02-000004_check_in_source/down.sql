ALTER TABLE check_ins DROP COLUMN imported_from;
ALTER TABLE check_ins DROP COLUMN source;
