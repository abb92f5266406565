ALTER TABLE patients DROP COLUMN country;
