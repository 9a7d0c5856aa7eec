DROP TABLE location_access;
