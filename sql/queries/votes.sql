-- name: ApplyVotes :one
-- Inserts the batch's ballots and folds only the newly inserted ones into
-- every tally, in one statement. The voter_id key makes the first vote of a
-- voter win (in batch order: ord) and a redelivered vote a no-op; upserts run
-- in key order so concurrent writers lock rows in the same order.
WITH input AS (
    SELECT unnest(@ords::integer[])             AS ord,
           unnest(@vote_ids::text[])::uuid      AS vote_id,
           unnest(@voter_ids::text[])           AS voter_id,
           unnest(@candidate_ids::text[])       AS candidate_id,
           unnest(@cast_ats::timestamptz[])     AS cast_at
),
eligible AS (
    SELECT i.ord, i.vote_id, i.voter_id, i.candidate_id, i.cast_at, v.region
    FROM input i
    JOIN voters v ON v.voter_id = i.voter_id
    JOIN candidates c ON c.candidate_id = i.candidate_id
),
inserted AS (
    INSERT INTO ballots (voter_id, vote_id, candidate_id, region, cast_at)
    SELECT e.voter_id, e.vote_id, e.candidate_id, e.region, e.cast_at
    FROM eligible e
    ORDER BY e.ord
    ON CONFLICT (voter_id) DO NOTHING
    RETURNING voter_id, candidate_id, region, cast_at
),
candidate_counts AS (
    INSERT INTO candidate_tallies AS t (candidate_id, votes)
    SELECT n.candidate_id, count(*) FROM inserted n GROUP BY n.candidate_id ORDER BY n.candidate_id
    ON CONFLICT (candidate_id) DO UPDATE SET votes = t.votes + excluded.votes
),
region_counts AS (
    INSERT INTO region_tallies AS t (region, candidate_id, votes)
    SELECT n.region, n.candidate_id, count(*) FROM inserted n
    GROUP BY n.region, n.candidate_id ORDER BY n.region, n.candidate_id
    ON CONFLICT (region, candidate_id) DO UPDATE SET votes = t.votes + excluded.votes
),
turnout AS (
    INSERT INTO regions AS t (region, votes_cast)
    SELECT n.region, count(*) FROM inserted n GROUP BY n.region ORDER BY n.region
    ON CONFLICT (region) DO UPDATE SET votes_cast = t.votes_cast + excluded.votes_cast
),
minutes AS (
    INSERT INTO timeline AS t (minute, candidate_id, votes)
    SELECT date_trunc('minute', n.cast_at), n.candidate_id, count(*) FROM inserted n
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (minute, candidate_id) DO UPDATE SET votes = t.votes + excluded.votes
),
-- Joined with voters (one row per voter), never back with the batch, which
-- may hold a voter twice.
demographics AS (
    INSERT INTO demographic_tallies AS t (dimension, bucket, candidate_id, votes)
    SELECT d.dimension, d.bucket, d.candidate_id, count(*)
    FROM (
        SELECT 'gender' AS dimension, v.gender AS bucket, n.candidate_id
        FROM inserted n JOIN voters v ON v.voter_id = n.voter_id
        UNION ALL
        SELECT 'age_band', age_band(v.birth_date, n.cast_at), n.candidate_id
        FROM inserted n JOIN voters v ON v.voter_id = n.voter_id
    ) d
    GROUP BY d.dimension, d.bucket, d.candidate_id
    ORDER BY d.dimension, d.bucket, d.candidate_id
    ON CONFLICT (dimension, bucket, candidate_id) DO UPDATE SET votes = t.votes + excluded.votes
)
SELECT count(*)::bigint AS accepted FROM inserted;

-- name: RecordRejections :many
-- Classifies the batch's votes that did not become a ballot and records each
-- rejection once per vote_id. Run after ApplyVotes in the same transaction:
-- as a separate statement it sees ballots that a concurrent writer committed
-- while ApplyVotes waited on its row lock, so a redelivery is never mistaken
-- for a second vote. Unknown voter/candidate rejections are only recorded
-- when @record_unknown is set (registration is known to be complete);
-- otherwise they are returned so the caller can retry them later, as are
-- votes whose registration landed between the two statements ('unapplied').
WITH input AS (
    SELECT unnest(@ords::integer[])             AS ord,
           unnest(@vote_ids::text[])::uuid      AS vote_id,
           unnest(@voter_ids::text[])           AS voter_id,
           unnest(@candidate_ids::text[])       AS candidate_id,
           unnest(@cast_ats::timestamptz[])     AS cast_at
),
classified AS (
    SELECT DISTINCT ON (i.vote_id) i.ord, i.vote_id, i.voter_id, i.cast_at,
        (CASE
            WHEN v.voter_id IS NULL THEN 'unknown_voter'
            WHEN c.candidate_id IS NULL THEN 'unknown_candidate'
            -- Registered now but not when ApplyVotes ran (it committed in
            -- between): not applied yet, never a duplicate. Retry it.
            WHEN b.voter_id IS NULL THEN 'unapplied'
            WHEN b.vote_id <> i.vote_id THEN 'duplicate_voter'
        END)::text AS reason
    FROM input i
    LEFT JOIN voters v ON v.voter_id = i.voter_id
    LEFT JOIN candidates c ON c.candidate_id = i.candidate_id
    LEFT JOIN ballots b ON b.voter_id = i.voter_id
    ORDER BY i.vote_id, i.ord
),
recorded AS (
    INSERT INTO rejections (vote_id, reason, voter_id, cast_at)
    SELECT k.vote_id, k.reason, k.voter_id, k.cast_at
    FROM classified k
    WHERE k.reason = 'duplicate_voter'
       OR (@record_unknown::boolean AND k.reason IN ('unknown_voter', 'unknown_candidate'))
    ORDER BY k.vote_id
    ON CONFLICT (vote_id) DO NOTHING
    RETURNING reason
),
counted AS (
    INSERT INTO rejection_tallies AS t (reason, count)
    SELECT r.reason, count(*) FROM recorded r GROUP BY r.reason ORDER BY r.reason
    ON CONFLICT (reason) DO UPDATE SET count = t.count + excluded.count
)
SELECT k.ord::integer AS ord, k.reason::text AS reason FROM classified k WHERE k.reason IS NOT NULL ORDER BY k.ord;
