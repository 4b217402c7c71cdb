-- regions.votes_cast stopped being maintained by the live path in 00019
-- (regions_summed derives it from contest_turnout); a replay still wrote
-- it, so after a swap it held a frozen count the reader could select.
-- One count, one place: the column goes.

-- +goose Up
ALTER TABLE regions DROP COLUMN votes_cast;

-- +goose Down
ALTER TABLE regions ADD COLUMN votes_cast bigint NOT NULL DEFAULT 0 CHECK (votes_cast >= 0);
UPDATE regions g SET votes_cast = coalesce((SELECT sum(t.votes_cast) FROM contest_turnout t
                                            WHERE t.contest_id = 'default' AND t.region = g.region), 0);
COMMENT ON COLUMN regions.votes_cast IS 'Not maintained by the live path since 00019: read regions_summed.votes_cast.';
