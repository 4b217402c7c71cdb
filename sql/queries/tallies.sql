-- name: AddTallies :exec
-- Adds tallies grouped in Go (projections' tallyGroups) to one stripe
-- (00019), every tally in one statement: live writes each batch's to the
-- batch's stripe, a replay writes its whole load once. Rows come sorted by
-- key, so two transactions that share a stripe lock rows in one order.
WITH candidates_counted AS (
    INSERT INTO candidate_tallies AS t (candidate_id, stripe, votes)
    SELECT unnest(@candidate_ids::text[]), @stripe::smallint, unnest(@candidate_counts::bigint[])
    ON CONFLICT (candidate_id, stripe) DO UPDATE SET votes = t.votes + excluded.votes
),
regions_counted AS (
    INSERT INTO region_tallies AS t (region, candidate_id, stripe, votes)
    SELECT unnest(@region_regions::text[]), unnest(@region_candidate_ids::text[]), @stripe::smallint, unnest(@region_counts::bigint[])
    ON CONFLICT (region, candidate_id, stripe) DO UPDATE SET votes = t.votes + excluded.votes
),
turnout AS (
    INSERT INTO contest_turnout AS t (contest_id, region, stripe, votes_cast)
    SELECT unnest(@turnout_contest_ids::text[]), unnest(@turnout_regions::text[]), @stripe::smallint, unnest(@turnout_counts::bigint[])
    ON CONFLICT (contest_id, region, stripe) DO UPDATE SET votes_cast = t.votes_cast + excluded.votes_cast
),
minutes AS (
    INSERT INTO timeline AS t (minute, candidate_id, stripe, votes)
    SELECT unnest(@minutes::timestamptz[]), unnest(@minute_candidate_ids::text[]), @stripe::smallint, unnest(@minute_counts::bigint[])
    ON CONFLICT (minute, candidate_id, stripe) DO UPDATE SET votes = t.votes + excluded.votes
),
demographics AS (
    INSERT INTO demographic_tallies AS t (dimension, bucket, candidate_id, stripe, votes)
    SELECT unnest(@dimensions::text[]), unnest(@buckets::text[]), unnest(@demographic_candidate_ids::text[]), @stripe::smallint,
           unnest(@demographic_counts::bigint[])
    ON CONFLICT (dimension, bucket, candidate_id, stripe) DO UPDATE SET votes = t.votes + excluded.votes
),
rejections_counted AS (
    INSERT INTO rejection_tallies AS t (contest_id, reason, stripe, count)
    SELECT unnest(@rejection_contest_ids::text[]), unnest(@reasons::text[]), @stripe::smallint, unnest(@rejection_counts::bigint[])
    ON CONFLICT (contest_id, reason, stripe) DO UPDATE SET count = t.count + excluded.count
)
INSERT INTO station_tallies AS t (station_id, outcome, stripe, votes)
SELECT unnest(@station_ids::text[]), unnest(@outcomes::text[]), @stripe::smallint, unnest(@station_counts::bigint[])
ON CONFLICT (station_id, outcome, stripe) DO UPDATE SET votes = t.votes + excluded.votes;
