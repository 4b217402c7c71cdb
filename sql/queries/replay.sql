-- The bulk path of a replay. Votes are COPYed into staged_votes, then
-- folded in set-wise by these statements, in this order, into a fresh
-- projection whose candidates and voters are already registered. The rules
-- are the live path's: the first eligible vote of a voter in log order wins
-- (all of a voter's votes share a partition, so offset order is log order);
-- every vote_id is decided once, at its first occurrence; while
-- registration is open, HoldStagedVotes first holds what live would hold.
-- Each vote's verdict is vote_verdict's (00016), as live: domain.Count is
-- the specification both follow.

-- name: RejectStagedTimes :execrows
-- Rule 5: the staged first occurrences that the time rule refused (worked
-- out in Go as they were read) are rejected before anything else. In a
-- fresh projection these are the only rejections when the folds below run,
-- so they exclude them by looking in rejections.
INSERT INTO rejections (vote_id, reason, voter_id, cast_at, station_id, contest_id, recorded_at)
SELECT f.vote_id, f.time_reason, f.voter_id, f.cast_at, f.station_id, f.contest_id, coalesce(f.logged_at, now())
FROM (SELECT DISTINCT ON (s.vote_id) s.vote_id, s.voter_id, s.cast_at, s.time_reason, s.station_id, s.contest_id, s.logged_at
      FROM staged_votes s ORDER BY s.vote_id, s.partition, s."offset") f
WHERE f.time_reason IS NOT NULL
ON CONFLICT (vote_id) DO NOTHING;

-- name: HoldStagedVotes :execrows
-- Rule 4, for a replay whose register is open: each voter's votes in a
-- contest from the first whose voter, candidate or contest is not
-- registered on are held (first occurrences of each vote_id, in log
-- order). The folds below skip them.
WITH firsts AS (
    SELECT DISTINCT ON (s.vote_id) s.vote_id, s.voter_id, s.candidate_id, s.cast_at, s.partition, s."offset", s.station_id, s.station_region, s.contest_id, s.logged_at
    FROM staged_votes s
    WHERE NOT EXISTS (SELECT 1 FROM rejections r WHERE r.vote_id = s.vote_id)
    ORDER BY s.vote_id, s.partition, s."offset"
),
marked AS (
    SELECT f.*, bool_or(vote_verdict(false, f.contest_id, v.region, f.station_region, k.regions, c.contest_id, false) = 'held')
                OVER (PARTITION BY f.voter_id, f.contest_id ORDER BY f.partition, f."offset" ROWS UNBOUNDED PRECEDING) AS hold
    FROM firsts f
    LEFT JOIN voters v ON v.voter_id = f.voter_id
    LEFT JOIN candidates c ON c.candidate_id = f.candidate_id
    LEFT JOIN contests k ON k.contest_id = f.contest_id
)
INSERT INTO held_votes (vote_id, voter_id, candidate_id, cast_at, partition, "offset", station_id, station_region, contest_id, logged_at)
SELECT m.vote_id, m.voter_id, m.candidate_id, m.cast_at, m.partition, m."offset", m.station_id, m.station_region, m.contest_id, m.logged_at
FROM marked m WHERE m.hold;

-- name: EnsureStagedDefaultContest :exec
-- The default contest exists as soon as a vote names it.
INSERT INTO contests (contest_id, name, kind)
SELECT 'default', 'default', 'candidate' WHERE EXISTS (SELECT 1 FROM staged_votes WHERE contest_id = 'default')
ON CONFLICT (contest_id) DO NOTHING;

-- name: InsertStagedBallots :execrows
-- Inserts the ballots: the first eligible vote of each voter in each
-- contest, from one sorted pass over the staged votes joined once with the
-- register. BallotGroups and BallotBreakdowns then count them, and
-- WriteDirectTallies writes the tallies as for the direct path. Only for a fresh projection: its ballots must be empty, and
-- nothing else may write it.
WITH firsts AS MATERIALIZED (
    -- Each vote_id at its first occurrence: a later copy never counts
    -- where the first was rejected or held.
    SELECT DISTINCT ON (s.vote_id) s.*
    FROM staged_votes s
    ORDER BY s.vote_id, s.partition, s."offset"
)
INSERT INTO ballots (voter_id, vote_id, candidate_id, region, cast_at, station_id, contest_id)
SELECT DISTINCT ON (s.voter_id, s.contest_id) s.voter_id, s.vote_id, s.candidate_id, v.region, s.cast_at, s.station_id, s.contest_id
FROM firsts s
JOIN voters v ON v.voter_id = s.voter_id
JOIN candidates c ON c.candidate_id = s.candidate_id
LEFT JOIN contests k ON k.contest_id = s.contest_id
-- Held votes are skipped below, so the verdict is asked as if
-- registration were closed; the first of a voter's in a contest wins.
WHERE vote_verdict(true, s.contest_id, v.region, s.station_region, k.regions, c.contest_id, false) = 'counted'
  AND NOT EXISTS (SELECT 1 FROM held_votes h WHERE h.vote_id = s.vote_id)
  AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.vote_id = s.vote_id)
ORDER BY s.voter_id, s.contest_id, s.partition, s."offset";

-- name: FoldStagedRejections :execrows
-- Only staged votes that did not become a ballot can be rejections (the
-- anti-join leaves few rows to classify: redeliveries and real rejects).
INSERT INTO rejections (vote_id, reason, voter_id, cast_at, station_id, contest_id, recorded_at)
SELECT k.vote_id, k.reason, k.voter_id, k.cast_at, k.station_id, k.contest_id, coalesce(k.logged_at, now())
FROM (
    SELECT f.vote_id, f.voter_id, f.cast_at, f.station_id, f.contest_id, f.logged_at,
        vote_verdict(true, f.contest_id, v.region, f.station_region, q.regions, c.contest_id, b.vote_id <> f.vote_id) AS reason
    FROM (SELECT DISTINCT ON (s.vote_id) s.vote_id, s.voter_id, s.candidate_id, s.cast_at, s.station_id, s.station_region, s.contest_id, s.logged_at
          FROM staged_votes s
          WHERE NOT EXISTS (SELECT 1 FROM ballots x WHERE x.vote_id = s.vote_id)
            AND NOT EXISTS (SELECT 1 FROM held_votes h WHERE h.vote_id = s.vote_id)
          ORDER BY s.vote_id, s.partition, s."offset") f
    LEFT JOIN voters v ON v.voter_id = f.voter_id
    LEFT JOIN candidates c ON c.candidate_id = f.candidate_id
    LEFT JOIN contests q ON q.contest_id = f.contest_id
    LEFT JOIN ballots b ON b.voter_id = f.voter_id AND b.contest_id = f.contest_id
) k
WHERE k.reason <> 'counted'
ON CONFLICT (vote_id) DO NOTHING;

-- name: RejectionCounts :many
-- Rejection counts of a fresh projection, from its rejections.
SELECT r.contest_id, r.reason, count(*)::bigint AS n FROM rejections r GROUP BY r.contest_id, r.reason;

-- name: StationCounts :many
-- Station counts of a fresh projection, from its ballots and rejections.
SELECT x.station_id::text AS station_id, x.outcome::text AS outcome, count(*)::bigint AS n
FROM (SELECT b.station_id, 'counted' AS outcome FROM ballots b WHERE b.station_id IS NOT NULL
      UNION ALL
      SELECT r.station_id, r.reason FROM rejections r WHERE r.station_id IS NOT NULL) x
GROUP BY x.station_id, x.outcome;

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

-- name: CopyStagedVotes :copyfrom
-- The staged path's load. The table is unqualified: it lands in the
-- session's search_path, the schema being rebuilt.
INSERT INTO staged_votes (partition, "offset", vote_id, voter_id, candidate_id, cast_at, time_reason, station_id, station_region, contest_id, logged_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);
