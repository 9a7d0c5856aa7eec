-- The person whose position a change row carries (presence changes only). A row of the feed
-- holds an exact position for up to an hour; deleting an account or clearing one's location
-- deletes that person's rows at once, by this column, so nothing of where they were outlives
-- what they asked to forget.
ALTER TABLE changes ADD COLUMN subject BIGINT;
CREATE INDEX changes_subject ON changes (subject) WHERE subject IS NOT NULL;
