DROP TRIGGER checkins_moved ON checkins;
DROP TRIGGER checkins_uncounted ON checkins;
DROP TRIGGER checkins_counted ON checkins;
DROP FUNCTION checkins_moved();
DROP FUNCTION checkins_uncounted();
DROP FUNCTION checkins_counted();
DROP TABLE user_activity;
DROP TABLE checkin_slots;
