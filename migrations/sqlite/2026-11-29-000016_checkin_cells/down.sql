DROP TRIGGER checkin_cells_venue_deleted;
DROP TRIGGER checkin_cells_venue_moved;
DROP TRIGGER checkin_cells_moved;
DROP TRIGGER checkin_cells_removed;
DROP TRIGGER checkin_cells_added;
DROP TRIGGER checkin_cells_recount;
DROP TABLE checkin_cells_stale;
DROP TABLE checkin_cells;
