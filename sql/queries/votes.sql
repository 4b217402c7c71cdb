-- The live decision rule (README, "How a vote is decided"; domain.Count is
-- its specification). Each vote's verdict is vote_verdict's (00016), which
-- the replay's statements ask too. A vote's transaction holds the registration lock
-- shared, so the register and its closure cannot change under it.

-- name: ApplyVotes :one
-- Decides the batch's votes that were not decided before, in batch order
-- (ord: log order within each partition). A vote whose voter, candidate or
-- contest is not registered while registration is open is held, and so is
-- every later vote of that voter in that contest (an earlier held vote
-- blocks them). The others become ballots where they are their voter's
-- first in the contest and the voter may vote in it for that candidate:
-- the (voter_id, contest_id) key makes the first vote win and a
-- redelivered vote a no-op. Only newly
-- inserted ballots are folded into the tallies, into the transaction's own
-- stripe (00019) so concurrent writers do not wait on each other's rows,
-- and in key order so two that share a stripe (two processes) lock rows in
-- the same order. Rejections are recorded afterwards by
-- RecordRejections, in the same transaction.
WITH input AS (
    SELECT unnest(@ords::integer[])             AS ord,
           unnest(@vote_ids::text[])::uuid      AS vote_id,
           unnest(@voter_ids::text[])           AS voter_id,
           unnest(@candidate_ids::text[])       AS candidate_id,
           unnest(@cast_ats::timestamptz[])     AS cast_at,
           unnest(@partitions::integer[])       AS partition,
           unnest(@offsets::bigint[])           AS "offset",
           nullif(unnest(@station_ids::text[]), '')     AS station_id,
           nullif(unnest(@station_regions::text[]), '') AS station_region,
           unnest(@contest_ids::text[])                 AS contest_id,
           nullif(unnest(@logged_ats::timestamptz[]), '0001-01-01 00:00:00+00') AS logged_at -- Go's zero time: unknown
),
-- Once decided (or held), a vote is never decided again.
fresh AS (
    SELECT i.* FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM rejections r WHERE r.vote_id = i.vote_id)
      AND NOT EXISTS (SELECT 1 FROM held_votes h WHERE h.vote_id = i.vote_id)
      AND NOT EXISTS (SELECT 1 FROM ballots b WHERE b.vote_id = i.vote_id)
),
looked AS (
    SELECT f.*, v.region,
           vote_verdict(@registration_closed::boolean, f.contest_id, v.region, f.station_region, k.regions, c.contest_id, false) AS verdict,
           EXISTS (SELECT 1 FROM held_votes h WHERE h.voter_id = f.voter_id AND h.contest_id = f.contest_id
                   AND (h.partition, h."offset") < (f.partition, f."offset")) AS blocked
    FROM fresh f
    LEFT JOIN voters v ON v.voter_id = f.voter_id
    LEFT JOIN candidates c ON c.candidate_id = f.candidate_id
    LEFT JOIN contests k ON k.contest_id = f.contest_id
),
-- A ballot's duplicates are left to the (voter_id, contest_id) key below,
-- so the verdict is asked as if the voter had none.
marked AS (
    SELECT l.*, (NOT @registration_closed::boolean
                 AND bool_or(l.blocked OR l.verdict = 'held')
                 OVER (PARTITION BY l.voter_id, l.contest_id ORDER BY l.ord ROWS UNBOUNDED PRECEDING)) AS hold
    FROM looked l
),
held AS (
    INSERT INTO held_votes (vote_id, voter_id, candidate_id, cast_at, partition, "offset", station_id, station_region, contest_id, logged_at)
    SELECT m.vote_id, m.voter_id, m.candidate_id, m.cast_at, m.partition, m."offset", m.station_id, m.station_region, m.contest_id, m.logged_at
    FROM marked m WHERE m.hold
    ORDER BY m.vote_id
    ON CONFLICT (vote_id) DO NOTHING
    RETURNING vote_id
),
inserted AS (
    INSERT INTO ballots (voter_id, vote_id, candidate_id, region, cast_at, station_id, contest_id)
    SELECT m.voter_id, m.vote_id, m.candidate_id, m.region, m.cast_at, m.station_id, m.contest_id
    FROM marked m
    WHERE NOT m.hold AND m.verdict = 'counted'
    ORDER BY m.ord
    ON CONFLICT (voter_id, contest_id) DO NOTHING
    RETURNING voter_id, candidate_id, region, cast_at, station_id, contest_id
),
-- The tallies change only through add_tallies (00025): the projector may
-- not write them itself. The breakdowns are joined with voters (one row
-- per voter), never back with the batch, which may hold a voter twice.
groups AS (
    SELECT n.region, n.candidate_id, n.contest_id, date_trunc('minute', n.cast_at) AS minute, count(*) AS n
    FROM inserted n GROUP BY 1, 2, 3, 4
),
breakdowns AS (
    SELECT d.dimension, d.bucket, d.candidate_id, count(*) AS n
    FROM (
        SELECT 'gender' AS dimension, v.gender AS bucket, n.candidate_id
        FROM inserted n JOIN voters v ON v.voter_id = n.voter_id
        UNION ALL
        SELECT 'age_band', age_band(v.birth_date, n.cast_at), n.candidate_id
        FROM inserted n JOIN voters v ON v.voter_id = n.voter_id
    ) d
    GROUP BY 1, 2, 3
),
stations AS (
    SELECT n.station_id, count(*) AS n FROM inserted n WHERE n.station_id IS NOT NULL GROUP BY 1
),
tallied AS (
    SELECT add_tallies(@stripe::smallint,
        g.regions, g.candidate_ids, g.contest_ids, g.minutes, g.counts,
        d.dimensions, d.buckets, d.candidate_ids, d.counts,
        '{}', '{}', '{}',
        s.station_ids, s.outcomes, s.counts) AS done
    FROM (SELECT coalesce(array_agg(x.region), '{}') AS regions, coalesce(array_agg(x.candidate_id), '{}') AS candidate_ids,
                 coalesce(array_agg(x.contest_id), '{}') AS contest_ids, coalesce(array_agg(x.minute), '{}') AS minutes,
                 coalesce(array_agg(x.n), '{}') AS counts FROM groups x) g,
         (SELECT coalesce(array_agg(x.dimension), '{}') AS dimensions, coalesce(array_agg(x.bucket), '{}') AS buckets,
                 coalesce(array_agg(x.candidate_id), '{}') AS candidate_ids, coalesce(array_agg(x.n), '{}') AS counts
          FROM breakdowns x) d,
         (SELECT coalesce(array_agg(x.station_id), '{}') AS station_ids, coalesce(array_agg('counted'::text), '{}') AS outcomes,
                 coalesce(array_agg(x.n), '{}') AS counts FROM stations x) s
)
SELECT (SELECT count(*) FROM inserted)::bigint AS accepted, (SELECT count(*) FROM held)::bigint AS held,
       (SELECT count(*) FROM tallied)::bigint AS tallied;

-- name: RecordRejections :many
-- Records, once per vote_id, why the batch's votes that are neither a
-- ballot nor held did not count: unknown voter, unknown candidate (only
-- possible once registration is closed: before, such votes are held), or a
-- second vote of a voter who has a ballot. Run after ApplyVotes in the same
-- transaction so it sees the ballots that ApplyVotes inserted; a redelivery
-- of a decided vote finds its ballot or its rejection and changes nothing.
WITH input AS (
    SELECT unnest(@ords::integer[])             AS ord,
           unnest(@vote_ids::text[])::uuid      AS vote_id,
           unnest(@voter_ids::text[])           AS voter_id,
           unnest(@candidate_ids::text[])       AS candidate_id,
           unnest(@cast_ats::timestamptz[])     AS cast_at,
           nullif(unnest(@station_ids::text[]), '')     AS station_id,
           nullif(unnest(@station_regions::text[]), '') AS station_region,
           unnest(@contest_ids::text[])                 AS contest_id,
           nullif(unnest(@logged_ats::timestamptz[]), '0001-01-01 00:00:00+00') AS logged_at -- Go's zero time: unknown
),
classified AS (
    SELECT DISTINCT ON (i.vote_id) i.ord, i.vote_id, i.voter_id, i.cast_at, i.station_id, i.contest_id, i.logged_at,
        -- Every vote here is decided (ApplyVotes held the others), so the
        -- verdict is asked as if registration were closed.
        vote_verdict(true, i.contest_id, v.region, i.station_region, k.regions, c.contest_id, b.vote_id <> i.vote_id) AS reason
    FROM input i
    LEFT JOIN voters v ON v.voter_id = i.voter_id
    LEFT JOIN candidates c ON c.candidate_id = i.candidate_id
    LEFT JOIN contests k ON k.contest_id = i.contest_id
    LEFT JOIN ballots b ON b.voter_id = i.voter_id AND b.contest_id = i.contest_id
    -- A vote_id is decided once: held, or counted (for whichever voter
    -- first used it), it is not classified again.
    WHERE NOT EXISTS (SELECT 1 FROM held_votes h WHERE h.vote_id = i.vote_id)
      AND NOT EXISTS (SELECT 1 FROM ballots x WHERE x.vote_id = i.vote_id)
    ORDER BY i.vote_id, i.ord
),
recorded AS (
    INSERT INTO rejections (vote_id, reason, voter_id, cast_at, station_id, contest_id, recorded_at)
    SELECT k.vote_id, k.reason, k.voter_id, k.cast_at, k.station_id, k.contest_id, coalesce(k.logged_at, now())
    FROM classified k
    WHERE k.reason <> 'counted'
    ORDER BY k.vote_id
    ON CONFLICT (vote_id) DO NOTHING
    RETURNING reason, station_id, contest_id
),
-- Counted through add_tallies (00025), as ApplyVotes counts ballots.
tallied AS (
    SELECT add_tallies(@stripe::smallint, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
        r.contest_ids, r.reasons, r.counts, s.station_ids, s.outcomes, s.counts) AS done
    FROM (SELECT coalesce(array_agg(x.contest_id), '{}') AS contest_ids, coalesce(array_agg(x.reason), '{}') AS reasons,
                 coalesce(array_agg(x.n), '{}') AS counts
          FROM (SELECT r.contest_id, r.reason, count(*) AS n FROM recorded r GROUP BY 1, 2) x) r,
         (SELECT coalesce(array_agg(x.station_id), '{}') AS station_ids, coalesce(array_agg(x.reason), '{}') AS outcomes,
                 coalesce(array_agg(x.n), '{}') AS counts
          FROM (SELECT r.station_id, r.reason, count(*) AS n FROM recorded r WHERE r.station_id IS NOT NULL GROUP BY 1, 2) x) s
)
SELECT k.ord::integer AS ord, k.reason::text AS reason FROM classified k
WHERE k.reason <> 'counted' AND (SELECT count(*) FROM tallied) = 1
ORDER BY k.ord;

-- name: ReleaseHeldVotes :many
-- Takes out of held_votes the votes that can now be decided, in log order:
-- of each voter named (directly, or through a held vote for one of the
-- candidates or contests named), or of every voter when @every_voter is
-- set, per contest the held votes before the first that must still wait.
-- The caller decides them with ApplyVotes in the same transaction.
WITH chain AS (
    SELECT h.vote_id,
           bool_or(vote_verdict(@registration_closed::boolean, h.contest_id, v.region, h.station_region, k.regions, c.contest_id, false) = 'held')
           OVER (PARTITION BY h.voter_id, h.contest_id ORDER BY h.partition, h."offset" ROWS UNBOUNDED PRECEDING) AS waits
    FROM held_votes h
    LEFT JOIN voters v ON v.voter_id = h.voter_id
    LEFT JOIN candidates c ON c.candidate_id = h.candidate_id
    LEFT JOIN contests k ON k.contest_id = h.contest_id
    WHERE @every_voter::boolean
       OR h.voter_id = ANY(@voter_ids::text[])
       OR h.voter_id IN (SELECT x.voter_id FROM held_votes x
                         WHERE x.candidate_id = ANY(@candidate_ids::text[]) OR x.contest_id = ANY(@contest_ids::text[]))
)
DELETE FROM held_votes h USING chain k
WHERE h.vote_id = k.vote_id AND NOT k.waits
RETURNING h.vote_id::text AS vote_id, h.voter_id, h.candidate_id, h.cast_at, h.partition, h."offset", h.station_id, h.station_region, h.contest_id, h.logged_at;

-- name: RejectVotes :one
-- Records the time rule's rejections (domain.CheckCastTime, decided in Go)
-- for votes not decided before, and counts them.
WITH input AS (
    SELECT unnest(@vote_ids::text[])::uuid      AS vote_id,
           unnest(@voter_ids::text[])           AS voter_id,
           unnest(@cast_ats::timestamptz[])     AS cast_at,
           unnest(@reasons::text[])             AS reason,
           nullif(unnest(@station_ids::text[]), '')     AS station_id,
           unnest(@contest_ids::text[])                 AS contest_id,
           nullif(unnest(@logged_ats::timestamptz[]), '0001-01-01 00:00:00+00') AS logged_at -- Go's zero time: unknown
),
recorded AS (
    INSERT INTO rejections (vote_id, reason, voter_id, cast_at, station_id, contest_id, recorded_at)
    SELECT i.vote_id, i.reason, i.voter_id, i.cast_at, i.station_id, i.contest_id, coalesce(i.logged_at, now())
    FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM held_votes h WHERE h.vote_id = i.vote_id)
      AND NOT EXISTS (SELECT 1 FROM ballots b WHERE b.vote_id = i.vote_id)
    ORDER BY i.vote_id
    ON CONFLICT (vote_id) DO NOTHING
    RETURNING reason, station_id, contest_id
),
-- Counted through add_tallies (00025), as ApplyVotes counts ballots.
tallied AS (
    SELECT add_tallies(@stripe::smallint, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
        r.contest_ids, r.reasons, r.counts, s.station_ids, s.outcomes, s.counts) AS done
    FROM (SELECT coalesce(array_agg(x.contest_id), '{}') AS contest_ids, coalesce(array_agg(x.reason), '{}') AS reasons,
                 coalesce(array_agg(x.n), '{}') AS counts
          FROM (SELECT r.contest_id, r.reason, count(*) AS n FROM recorded r GROUP BY 1, 2) x) r,
         (SELECT coalesce(array_agg(x.station_id), '{}') AS station_ids, coalesce(array_agg(x.reason), '{}') AS outcomes,
                 coalesce(array_agg(x.n), '{}') AS counts
          FROM (SELECT r.station_id, r.reason, count(*) AS n FROM recorded r WHERE r.station_id IS NOT NULL GROUP BY 1, 2) x) s
)
SELECT count(*)::bigint FROM recorded WHERE (SELECT count(*) FROM tallied) = 1;

-- name: RecordSchedule :exec
-- Records a schedule read at a votes partition's position.
INSERT INTO vote_schedules (partition, "offset", polls_open, polls_close)
VALUES (@partition, @message_offset, @polls_open, @polls_close)
ON CONFLICT (partition, "offset") DO NOTHING;

-- name: ListSchedules :many
SELECT partition, "offset", polls_open, polls_close FROM vote_schedules ORDER BY partition, "offset";

-- name: EnsureDefaultContest :exec
-- The default contest exists as soon as a candidate or a vote names it.
INSERT INTO contests (contest_id, name, kind) VALUES ('default', 'default', 'candidate')
ON CONFLICT (contest_id) DO NOTHING;
