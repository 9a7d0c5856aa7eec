DROP TABLE presence;
DROP TABLE checkins;
DROP TABLE venues;
DROP TABLE categories;
