-- name: AddTallies :exec
-- Adds one batch's counts to the tallies in the caller's stripe, through
-- add_tallies (00025): the only way the projector's login changes a
-- tally, live and in replay. The arrays are projections' tallyGroups (counted ballots grouped by
-- region, candidate, contest and minute; breakdowns; rejections per
-- contest and reason; decided votes per station and outcome); every count
-- must be positive.
SELECT add_tallies(@stripe::smallint,
    @regions::text[], @candidate_ids::text[], @contest_ids::text[], @minutes::timestamptz[], @counts::bigint[],
    @dimensions::text[], @buckets::text[], @demographic_candidate_ids::text[], @demographic_counts::bigint[],
    @rejection_contest_ids::text[], @reasons::text[], @rejection_counts::bigint[],
    @station_ids::text[], @outcomes::text[], @station_counts::bigint[]);
