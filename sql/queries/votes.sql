-- The live write path of votes (README, "How a vote is counted"). The
-- database stores decisions and never makes them: per batch, the store
-- loads the facts the rule needs for the batch's keys (LoadVoteFacts),
-- domain.Decide decides in Go, and the decisions and the tallies grouped
-- in Go are written here. A vote's transaction holds the registration lock
-- shared, so the register and its closure cannot change under it.

-- name: LoadVoteFacts :one
-- Everything domain.Decide needs to know about a batch, in one round trip:
-- the register's entries for the voters, candidates and contests it names,
-- which of its voters have a counted or a held vote in which contest, which
-- of its vote_ids were decided before, every schedule, and whether
-- registration is closed. Each group of arrays is aggregated in one pass,
-- so its arrays line up. A contest's regions are joined by the unit
-- separator (sqlc passes no arrays of arrays).
WITH v AS (
    SELECT array_agg(voter_id) AS ids, array_agg(region) AS regions, array_agg(gender) AS genders, array_agg(birth_date) AS births
    FROM voters WHERE voter_id = ANY(@voter_ids::text[])
),
c AS (
    SELECT array_agg(candidate_id) AS ids, array_agg(contest_id) AS contests
    FROM candidates WHERE candidate_id = ANY(@candidate_ids::text[])
),
k AS (
    SELECT array_agg(contest_id) AS ids, array_agg(name) AS names, array_agg(kind) AS kinds,
           array_agg(array_to_string(regions, E'\x1f')) AS regions
    FROM contests WHERE contest_id = ANY(@contest_ids::text[])
),
b AS (
    SELECT array_agg(voter_id) AS voters, array_agg(contest_id) AS contests
    FROM ballots WHERE voter_id = ANY(@voter_ids::text[])
),
h AS (
    SELECT array_agg(voter_id) AS voters, array_agg(contest_id) AS contests
    FROM held_votes WHERE voter_id = ANY(@voter_ids::text[])
),
d AS (
    SELECT array_agg(x.vote_id::text) AS ids FROM (
        SELECT vote_id FROM ballots WHERE vote_id = ANY(@vote_ids::uuid[])
        UNION ALL SELECT vote_id FROM rejections WHERE vote_id = ANY(@vote_ids::uuid[])
        UNION ALL SELECT vote_id FROM held_votes WHERE vote_id = ANY(@vote_ids::uuid[])
    ) x
),
s AS (
    SELECT array_agg(partition) AS partitions, array_agg("offset") AS offsets, array_agg(polls_open) AS opens, array_agg(polls_close) AS closes
    FROM vote_schedules
),
st AS (
    -- The stations' openings on the votes partitions (rule 7).
    SELECT array_agg(station_id) AS ids, array_agg(partition) AS partitions, array_agg("offset") AS offsets,
           array_agg(region) AS regions
    FROM station_openings WHERE station_id = ANY(@station_ids::text[])
),
sc AS (
    -- The stations' close markers on the votes partitions (rule 6).
    SELECT array_agg(station_id) AS ids, array_agg(partition) AS partitions, array_agg("offset") AS offsets
    FROM station_closures WHERE station_id = ANY(@station_ids::text[])
),
declared AS (
    SELECT rc.topic, max(rc.partitions) AS n FROM registration_closures rc GROUP BY rc.topic
)
SELECT coalesce(v.ids, '{}')::text[] AS voter_ids, coalesce(v.regions, '{}')::text[] AS voter_regions,
       coalesce(v.genders, '{}')::text[] AS voter_genders, coalesce(v.births, '{}')::date[] AS voter_births,
       coalesce(c.ids, '{}')::text[] AS candidate_ids, coalesce(c.contests, '{}')::text[] AS candidate_contests,
       coalesce(k.ids, '{}')::text[] AS contest_ids, coalesce(k.names, '{}')::text[] AS contest_names,
       coalesce(k.kinds, '{}')::text[] AS contest_kinds, coalesce(k.regions, '{}')::text[] AS contest_regions,
       coalesce(b.voters, '{}')::text[] AS counted_voters, coalesce(b.contests, '{}')::text[] AS counted_contests,
       coalesce(h.voters, '{}')::text[] AS held_voters, coalesce(h.contests, '{}')::text[] AS held_contests,
       coalesce(d.ids, '{}')::text[] AS decided_ids,
       coalesce(s.partitions, '{}')::integer[] AS schedule_partitions, coalesce(s.offsets, '{}')::bigint[] AS schedule_offsets,
       coalesce(s.opens, '{}')::timestamptz[] AS schedule_opens, coalesce(s.closes, '{}')::timestamptz[] AS schedule_closes,
       coalesce(st.ids, '{}')::text[] AS opening_station_ids, coalesce(st.partitions, '{}')::integer[] AS opening_partitions,
       coalesce(st.offsets, '{}')::bigint[] AS opening_offsets, coalesce(st.regions, '{}')::text[] AS opening_regions,
       coalesce(sc.ids, '{}')::text[] AS closure_station_ids, coalesce(sc.partitions, '{}')::integer[] AS closure_partitions,
       coalesce(sc.offsets, '{}')::bigint[] AS closure_offsets,
       (SELECT coalesce(count(*) = 3 AND bool_and(
                   (SELECT count(*) FROM registration_closures rc WHERE rc.topic = x.topic AND rc.partition < x.n) = x.n),
               false) FROM declared x)::boolean AS registration_closed
FROM v, c, k, b, h, d, s, st, sc;

-- name: WriteVoteDecisions :exec
-- Stores domain.Decide's decisions on a batch: the ballots, the rejections
-- with their reasons, the held votes, the misrouted votes' positions, and
-- the default contest when a vote named it. A ballot names no candidate and
-- a held vote keeps its message as the log holds it, sealed when the vote
-- was (00040): the choice goes only into the tallies. Plain inserts: the decider
-- decided each vote once, so a conflict on the ballots' (voter_id,
-- contest_id) key or a vote_id means a concurrent transaction decided the
-- same vote or key first; the error (23505) makes the store decide the
-- batch again on fresh facts. Misrouted positions may be redelivered.
WITH ballots_in AS (
    INSERT INTO ballots (voter_id, vote_id, region, cast_at, station_id, contest_id)
    SELECT unnest(@ballot_voter_ids::text[]), unnest(@ballot_vote_ids::uuid[]),
           unnest(@ballot_regions::text[]), unnest(@ballot_cast_ats::timestamptz[]),
           nullif(unnest(@ballot_station_ids::text[]), ''), unnest(@ballot_contest_ids::text[])
),
rejections_in AS (
    INSERT INTO rejections (vote_id, reason, voter_id, cast_at, station_id, contest_id, recorded_at)
    SELECT unnest(@rejected_vote_ids::uuid[]), unnest(@rejected_reasons::text[]), unnest(@rejected_voter_ids::text[]),
           unnest(@rejected_cast_ats::timestamptz[]), nullif(unnest(@rejected_station_ids::text[]), ''),
           unnest(@rejected_contest_ids::text[]), unnest(@rejected_recorded_ats::timestamptz[])
),
held_in AS (
    INSERT INTO held_votes (vote_id, voter_id, message, cast_at, partition, "offset", station_id, station_region, contest_id, logged_at)
    SELECT unnest(@held_vote_ids::uuid[]), unnest(@held_voter_ids::text[]), unnest(@held_messages::bytea[]),
           unnest(@held_cast_ats::timestamptz[]), unnest(@held_partitions::integer[]), unnest(@held_offsets::bigint[]),
           nullif(unnest(@held_station_ids::text[]), ''), nullif(unnest(@held_station_regions::text[]), ''),
           unnest(@held_contest_ids::text[]),
           nullif(unnest(@held_logged_ats::timestamptz[]), '0001-01-01 00:00:00+00') -- Go's zero time: unknown
),
misrouted_in AS (
    INSERT INTO misrouted_votes (partition, "offset")
    SELECT unnest(@misrouted_partitions::integer[]), unnest(@misrouted_offsets::bigint[])
    ON CONFLICT (partition, "offset") DO NOTHING
)
INSERT INTO contests (contest_id, name, kind)
SELECT 'default', 'default', 'candidate' WHERE @names_default::boolean
ON CONFLICT (contest_id) DO NOTHING;

-- name: TakeHeldVotes :many
-- Takes out of held_votes every held vote of the voters named (directly, or
-- through a held vote in one of the contests named), or of every voter when
-- @every_voter is set, for the store to decide them again in log order
-- (domain.Decide holds again those that must still wait). A held vote
-- names no candidate (00040), so a candidate's registration releases every
-- held vote (EveryVoter): the decider holds again those still waiting.
DELETE FROM held_votes h
WHERE @every_voter::boolean
   OR h.voter_id = ANY(@voter_ids::text[])
   OR h.voter_id IN (SELECT x.voter_id FROM held_votes x WHERE x.contest_id = ANY(@contest_ids::text[]))
RETURNING h.vote_id::text AS vote_id, h.voter_id, h.message, h.partition, h."offset", h.logged_at;

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

-- name: RecordStationClose :exec
-- Records a close marker read on a votes partition, for each of its
-- stations; the first of a station in a partition is the one that counts.
INSERT INTO station_closures (station_id, partition, "offset", closed_at)
SELECT DISTINCT unnest(@station_ids::text[]), @partition::integer, @message_offset::bigint, @closed_at::timestamptz
ORDER BY 1
ON CONFLICT (station_id, partition) DO NOTHING;

-- name: RecordStationOpen :exec
-- Records an opening read on a votes partition, for each of its stations;
-- the first of a station in a partition is the one that counts.
INSERT INTO station_openings (station_id, partition, "offset", region, opened_at)
SELECT DISTINCT ON (o.station_id) o.station_id, @partition::integer, @message_offset::bigint, o.region, @opened_at::timestamptz
FROM (SELECT unnest(@station_ids::text[]) AS station_id, unnest(@regions::text[]) AS region, generate_subscripts(@station_ids::text[], 1) AS ord) o
ORDER BY o.station_id, o.ord
ON CONFLICT (station_id, partition) DO NOTHING;
