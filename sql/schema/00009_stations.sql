-- Stations: the station a vote came through (contract v1.1) is kept with
-- its decision and counted per station, and a vote through a station that
-- does not serve its voter's region is rejected (wrong_station).

-- +goose Up
ALTER TABLE ballots ADD COLUMN station_id text;
ALTER TABLE rejections ADD COLUMN station_id text;
ALTER TABLE held_votes ADD COLUMN station_id text, ADD COLUMN station_region text;
ALTER TABLE staged_votes ADD COLUMN station_id text, ADD COLUMN station_region text;

ALTER TABLE rejections DROP CONSTRAINT rejections_reason_check;
ALTER TABLE rejections ADD CONSTRAINT rejections_reason_check
    CHECK (reason IN ('duplicate_voter', 'unknown_voter', 'unknown_candidate', 'outside_polls', 'implausible_time', 'wrong_station'));

-- Decided votes per station and outcome ('counted' or a rejection reason):
-- what monitoring watches to spot a stolen token or a misconfigured
-- terminal. Aggregates only.
CREATE TABLE station_tallies (
    station_id text NOT NULL,
    outcome    text NOT NULL,
    votes      bigint NOT NULL CHECK (votes >= 0),
    PRIMARY KEY (station_id, outcome)
);

-- +goose Down
DROP TABLE station_tallies;
ALTER TABLE rejections DROP CONSTRAINT rejections_reason_check;
ALTER TABLE rejections ADD CONSTRAINT rejections_reason_check
    CHECK (reason IN ('duplicate_voter', 'unknown_voter', 'unknown_candidate', 'outside_polls', 'implausible_time'));
ALTER TABLE staged_votes DROP COLUMN station_region, DROP COLUMN station_id;
ALTER TABLE held_votes DROP COLUMN station_region, DROP COLUMN station_id;
ALTER TABLE rejections DROP COLUMN station_id;
ALTER TABLE ballots DROP COLUMN station_id;
