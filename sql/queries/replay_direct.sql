-- The replay's direct path (issue 13 §3), for a fresh projection: the
-- votes are decided in Go, in log order, by the verdicts vote_verdict
-- gives (the rule stays written once, in SQL; Go only remembers its
-- answers), and the ballots, rejections and held votes are COPYed straight
-- into their tables. Go groups the counted ballots as it decides them;
-- WriteDirectTallies rolls the groups up into the tallies.

-- name: ListVoterFacts :many
-- The given voters' facts in the register, for deciding their votes in Go
-- and counting their ballots into the breakdowns. Asked per chunk of votes:
-- the work follows the votes, not the register's size.
SELECT voter_id, region, gender, birth_date FROM voters WHERE voter_id = ANY(@voter_ids::text[]);

-- name: AgeBands :many
-- age_band on each polling day for each birth date given: the breakdowns'
-- bands, asked once per pair.
WITH input AS (
    SELECT unnest(@ords::integer[])     AS ord,
           unnest(@birth_dates::date[]) AS birth_date,
           unnest(@days::date[])        AS day
)
SELECT i.ord::integer AS ord,
       age_band(i.birth_date, i.day::timestamp AT TIME ZONE 'UTC')::text AS band
FROM input i
ORDER BY i.ord;

-- name: WriteDirectTallies :exec
-- Every tally of a fresh projection, in both replay paths, from the first
-- grouping of its ballots (made in Go by the direct path as it decides, read
-- by BallotGroups in the staged path): the counts per region, candidate,
-- contest and minute are rolled up here, once for both; the breakdowns,
-- rejections and stations come counted. Its tallies must be empty.
WITH counts AS MATERIALIZED (
    SELECT unnest(@regions::text[])         AS region,
           unnest(@candidate_ids::text[])   AS candidate_id,
           unnest(@contest_ids::text[])     AS contest_id,
           unnest(@minutes::timestamptz[])  AS minute,
           unnest(@counts::bigint[])        AS n
),
candidates_counted AS (
    INSERT INTO candidate_tallies (candidate_id, votes)
    SELECT k.candidate_id, sum(k.n) FROM counts k GROUP BY k.candidate_id
),
regions_counted AS (
    INSERT INTO region_tallies (region, candidate_id, votes)
    SELECT k.region, k.candidate_id, sum(k.n) FROM counts k GROUP BY k.region, k.candidate_id
),
contest_turnout AS (
    INSERT INTO contest_turnout (contest_id, region, votes_cast)
    SELECT k.contest_id, k.region, sum(k.n) FROM counts k GROUP BY k.contest_id, k.region
),
minutes AS (
    INSERT INTO timeline (minute, candidate_id, votes)
    SELECT k.minute, k.candidate_id, sum(k.n) FROM counts k GROUP BY k.minute, k.candidate_id
),
demographics AS (
    INSERT INTO demographic_tallies (dimension, bucket, candidate_id, votes)
    SELECT unnest(@dimensions::text[]), unnest(@buckets::text[]), unnest(@demographic_candidate_ids::text[]), unnest(@demographic_counts::bigint[])
),
rejections_counted AS (
    INSERT INTO rejection_tallies (contest_id, reason, count)
    SELECT unnest(@rejection_contest_ids::text[]), unnest(@reasons::text[]), unnest(@rejection_counts::bigint[])
)
INSERT INTO station_tallies (station_id, outcome, votes)
SELECT unnest(@station_ids::text[]), unnest(@outcomes::text[]), unnest(@station_counts::bigint[]);

-- name: VoteVerdicts :many
-- vote_verdict for each combination given, as the voter's first counted
-- vote in the contest and as a later one. An unknown voter, and a vote without a station, pass an empty
-- region.
WITH input AS (
    SELECT unnest(@ords::integer[])                          AS ord,
           unnest(@contest_ids::text[])                      AS contest_id,
           unnest(@candidate_ids::text[])                    AS candidate_id,
           nullif(unnest(@voter_regions::text[]), '')        AS voter_region,
           nullif(unnest(@station_regions::text[]), '')      AS station_region
)
SELECT i.ord::integer AS ord,
       vote_verdict(@registration_closed::boolean, i.contest_id, i.voter_region, i.station_region, k.regions, c.contest_id, false)::text AS first,
       vote_verdict(@registration_closed::boolean, i.contest_id, i.voter_region, i.station_region, k.regions, c.contest_id, true)::text AS again
FROM input i
LEFT JOIN contests k ON k.contest_id = i.contest_id
LEFT JOIN candidates c ON c.candidate_id = i.candidate_id
ORDER BY i.ord;

-- name: BallotGroups :many
-- The staged path's first grouping of a fresh projection's ballots, the
-- one the direct path makes in Go as it decides: WriteDirectTallies rolls
-- either up.
SELECT b.region, b.candidate_id, b.contest_id, date_trunc('minute', b.cast_at)::timestamptz AS minute, count(*)::bigint AS n
FROM ballots b GROUP BY 1, 2, 3, 4;

-- name: BallotBreakdowns :many
-- The staged path's breakdowns of a fresh projection's ballots by gender
-- and age band, from one join with the register; age_band is asked once
-- per birth date and polling day, not per ballot.
WITH grouped AS MATERIALIZED (
    SELECT b.candidate_id, v.gender, v.birth_date, (b.cast_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM ballots b JOIN voters v ON v.voter_id = b.voter_id
    GROUP BY 1, 2, 3, 4
),
bands AS (
    SELECT d.birth_date, d.day, age_band(d.birth_date, d.day::timestamp AT TIME ZONE 'UTC') AS band
    FROM (SELECT DISTINCT g.birth_date, g.day FROM grouped g) d
)
SELECT 'gender'::text AS dimension, g.gender::text AS bucket, g.candidate_id, sum(g.n)::bigint AS n FROM grouped g GROUP BY g.gender, g.candidate_id
UNION ALL
SELECT 'age_band', a.band::text, g.candidate_id, sum(g.n)::bigint
FROM grouped g JOIN bands a ON a.birth_date = g.birth_date AND a.day = g.day
GROUP BY a.band, g.candidate_id;

-- name: CopyBallots :copyfrom
-- The direct path's COPYs. sqlc's CopyFrom names the table unqualified:
-- the rows land in the session's search_path, the schema being rebuilt.
INSERT INTO ballots (voter_id, vote_id, candidate_id, region, cast_at, station_id, contest_id)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: CopyRejections :copyfrom
INSERT INTO rejections (vote_id, reason, voter_id, cast_at, station_id, contest_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: CopyHeldVotes :copyfrom
INSERT INTO held_votes (vote_id, voter_id, candidate_id, cast_at, partition, "offset", station_id, station_region, contest_id, logged_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);

-- name: CountRegister :one
-- How many voters the register holds, from the regions' counts (the audit
-- checks that they agree with the register): whether the voters a replay
-- kept from its registrations are all of them.
SELECT coalesce(sum(registered_voters), 0)::bigint AS voters FROM regions;
