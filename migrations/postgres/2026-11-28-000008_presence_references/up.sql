-- Presence rows point at the venue and check-in behind them. Here-now finds the people at a
-- venue by presence.venue_id, and deleting a check-in or venue clears the pointers through
-- these foreign keys: without an index each of those reads every presence row (measured: a
-- delete of check-ins at 1M users ran for minutes).
CREATE INDEX presence_venue_id ON presence (venue_id);
CREATE INDEX presence_checkin_id ON presence (checkin_id);
