-- The bulk path of a replay. Votes are COPYed into staged_votes, then
-- folded in set-wise by these statements, in this order, into a fresh
-- projection whose candidates and voters are already registered. The rules
-- are the live path's: the first eligible vote of a voter in log order wins
-- (all of a voter's votes share a partition, so offset order is log order);
-- every vote_id is decided once, at its first occurrence.

-- name: FoldStagedBallots :execrows
INSERT INTO ballots (voter_id, vote_id, candidate_id, region, cast_at)
SELECT DISTINCT ON (s.voter_id) s.voter_id, s.vote_id, s.candidate_id, v.region, s.cast_at
FROM staged_votes s
JOIN voters v ON v.voter_id = s.voter_id
JOIN candidates c ON c.candidate_id = s.candidate_id
ORDER BY s.voter_id, s.partition, s."offset"
ON CONFLICT (voter_id) DO NOTHING;

-- name: FoldStagedRejections :execrows
INSERT INTO rejections (vote_id, reason, voter_id, cast_at)
SELECT k.vote_id, k.reason, k.voter_id, k.cast_at
FROM (
    SELECT f.vote_id, f.voter_id, f.cast_at,
        CASE
            WHEN v.voter_id IS NULL THEN 'unknown_voter'
            WHEN c.candidate_id IS NULL THEN 'unknown_candidate'
            WHEN b.vote_id <> f.vote_id THEN 'duplicate_voter'
        END AS reason
    FROM (SELECT DISTINCT ON (s.vote_id) s.vote_id, s.voter_id, s.candidate_id, s.cast_at
          FROM staged_votes s ORDER BY s.vote_id, s.partition, s."offset") f
    LEFT JOIN voters v ON v.voter_id = f.voter_id
    LEFT JOIN candidates c ON c.candidate_id = f.candidate_id
    LEFT JOIN ballots b ON b.voter_id = f.voter_id
) k
WHERE k.reason IS NOT NULL
ON CONFLICT (vote_id) DO NOTHING;

-- name: RecountTallies :exec
-- Computes every vote tally from ballots and rejections. Only for a fresh
-- projection whose tallies are still empty and that nothing else writes (a
-- replay's, right after its bulk load).
WITH
candidates_counted AS (
    INSERT INTO candidate_tallies (candidate_id, votes)
    SELECT b.candidate_id, count(*) FROM ballots b GROUP BY b.candidate_id
),
regions_counted AS (
    INSERT INTO region_tallies (region, candidate_id, votes)
    SELECT b.region, b.candidate_id, count(*) FROM ballots b GROUP BY b.region, b.candidate_id
),
turnout AS (
    UPDATE regions g SET votes_cast = n.votes
    FROM (SELECT b.region, count(*) AS votes FROM ballots b GROUP BY b.region) n
    WHERE g.region = n.region
),
minutes AS (
    INSERT INTO timeline (minute, candidate_id, votes)
    SELECT date_trunc('minute', b.cast_at), b.candidate_id, count(*) FROM ballots b GROUP BY 1, 2
),
demographics AS (
    INSERT INTO demographic_tallies (dimension, bucket, candidate_id, votes)
    SELECT d.dimension, d.bucket, d.candidate_id, count(*)
    FROM (
        SELECT 'gender' AS dimension, v.gender AS bucket, b.candidate_id
        FROM ballots b JOIN voters v ON v.voter_id = b.voter_id
        UNION ALL
        SELECT 'age_band', age_band(v.birth_date, b.cast_at), b.candidate_id
        FROM ballots b JOIN voters v ON v.voter_id = b.voter_id
    ) d
    GROUP BY d.dimension, d.bucket, d.candidate_id
)
INSERT INTO rejection_tallies (reason, count)
SELECT r.reason, count(*) FROM rejections r GROUP BY r.reason;

-- name: StagedPositions :many
-- Per partition, the next offset after the staged votes and the newest
-- cast_at among them.
SELECT s.partition, (max(s."offset") + 1)::bigint AS next_offset, max(s.cast_at)::timestamptz AS last_event_at
FROM staged_votes s GROUP BY s.partition ORDER BY s.partition;

-- name: ClearStagedVotes :exec
TRUNCATE staged_votes;

-- name: MarkBuilt :exec
UPDATE projection_meta SET built_at = now(), built_by = @built_by, watermarks = @watermarks;

-- name: GetProjectionMeta :one
SELECT built_at, built_by, watermarks FROM projection_meta;
