DROP TRIGGER checkins_moved;
DROP TRIGGER checkins_uncounted;
DROP TRIGGER checkins_counted;
DROP TABLE user_activity;
DROP TABLE checkin_slots;
