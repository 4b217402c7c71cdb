-- A rejection is recorded at its vote's log time (the Kafka record
-- timestamp), not at the moment a projector got to it: a replay then
-- rebuilds the same times, and the monitoring panel shows when votes were
-- refused, not when the projection was last rebuilt.

-- +goose Up
ALTER TABLE held_votes ADD COLUMN logged_at timestamptz;
ALTER TABLE staged_votes ADD COLUMN logged_at timestamptz;

-- +goose Down
ALTER TABLE staged_votes DROP COLUMN logged_at;
ALTER TABLE held_votes DROP COLUMN logged_at;
