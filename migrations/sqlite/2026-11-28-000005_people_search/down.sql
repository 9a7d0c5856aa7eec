DROP INDEX users_display_name_key;
ALTER TABLE users DROP COLUMN display_name_key;
