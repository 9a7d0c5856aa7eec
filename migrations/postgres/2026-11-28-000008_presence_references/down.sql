DROP INDEX presence_checkin_id;
DROP INDEX presence_venue_id;
