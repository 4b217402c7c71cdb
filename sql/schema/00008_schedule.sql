-- The election's schedule and the vote time rule (README, "How a vote is
-- decided", rule 5).

-- +goose Up
-- Schedules read on each votes partition, at their log position: a vote is
-- checked against the latest one before it in its partition.
CREATE TABLE vote_schedules (
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    polls_open  timestamptz NOT NULL,
    polls_close timestamptz NOT NULL CHECK (polls_close > polls_open),
    PRIMARY KEY (partition, "offset")
);

ALTER TABLE rejections DROP CONSTRAINT rejections_reason_check;
ALTER TABLE rejections ADD CONSTRAINT rejections_reason_check
    CHECK (reason IN ('duplicate_voter', 'unknown_voter', 'unknown_candidate', 'outside_polls', 'implausible_time'));

-- Replay stages each vote with the time rule's verdict, worked out in Go
-- as the votes are read (domain.CheckCastTime).
ALTER TABLE staged_votes ADD COLUMN time_reason text;

-- +goose Down
ALTER TABLE staged_votes DROP COLUMN time_reason;
ALTER TABLE rejections DROP CONSTRAINT rejections_reason_check;
ALTER TABLE rejections ADD CONSTRAINT rejections_reason_check
    CHECK (reason IN ('duplicate_voter', 'unknown_voter', 'unknown_candidate'));
DROP TABLE vote_schedules;
