-- The replay's direct path (issue 13 §3), for a fresh projection: the
-- votes are decided in Go, in log order, by the verdicts vote_verdict
-- gives (the rule stays written once, in SQL; Go only remembers its
-- answers), and the ballots, rejections and held votes are COPYed straight
-- into their tables. Only the tallies are folded in SQL.

-- name: ListVoterRegions :many
-- The register's voters, for looking a vote's voter up in Go.
SELECT voter_id, region FROM voters;

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

-- name: FoldBallotTallies :one
-- Every vote tally of a fresh projection from its ballots: one grouping
-- of the ballots for the counts, one join with the register for the
-- breakdowns. Its tallies must be empty.
WITH counts AS MATERIALIZED (
    SELECT b.region, b.candidate_id, b.contest_id, date_trunc('minute', b.cast_at) AS minute, count(*) AS n
    FROM ballots b GROUP BY 1, 2, 3, 4
),
candidates_counted AS (
    INSERT INTO candidate_tallies (candidate_id, votes)
    SELECT k.candidate_id, sum(k.n) FROM counts k GROUP BY k.candidate_id
),
regions_counted AS (
    INSERT INTO region_tallies (region, candidate_id, votes)
    SELECT k.region, k.candidate_id, sum(k.n) FROM counts k GROUP BY k.region, k.candidate_id
),
turnout AS (
    UPDATE regions g SET votes_cast = t.n
    FROM (SELECT k.region, sum(k.n) AS n FROM counts k WHERE k.contest_id = 'default' GROUP BY k.region) t
    WHERE g.region = t.region
),
contest_turnout AS (
    INSERT INTO contest_turnout (contest_id, region, votes_cast)
    SELECT k.contest_id, k.region, sum(k.n) FROM counts k GROUP BY k.contest_id, k.region
),
minutes AS (
    INSERT INTO timeline (minute, candidate_id, votes)
    SELECT k.minute, k.candidate_id, sum(k.n) FROM counts k GROUP BY k.minute, k.candidate_id
),
-- The breakdowns from the ballots grouped by candidate, gender, birth date
-- and polling day; age_band is asked once per birth date and day, not per
-- group (in a large election, far fewer calls).
grouped AS MATERIALIZED (
    SELECT b.candidate_id, v.gender, v.birth_date, (b.cast_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM ballots b JOIN voters v ON v.voter_id = b.voter_id
    GROUP BY 1, 2, 3, 4
),
bands AS (
    SELECT d.birth_date, d.day, age_band(d.birth_date, d.day::timestamp AT TIME ZONE 'UTC') AS band
    FROM (SELECT DISTINCT g.birth_date, g.day FROM grouped g) d
),
demographics AS (
    INSERT INTO demographic_tallies (dimension, bucket, candidate_id, votes)
    SELECT 'gender', g.gender, g.candidate_id, sum(g.n) FROM grouped g GROUP BY g.gender, g.candidate_id
    UNION ALL
    SELECT 'age_band', a.band, g.candidate_id, sum(g.n)
    FROM grouped g JOIN bands a ON a.birth_date = g.birth_date AND a.day = g.day
    GROUP BY a.band, g.candidate_id
)
SELECT coalesce(sum(k.n), 0)::bigint AS ballots FROM counts k;
