-- Registrations. Each runs in a transaction that holds the registration
-- lock exclusively (votes hold it shared), then releases the held votes it
-- makes decidable. A registration after its partition's close marker is
-- refused and counted, never applied.

-- name: ApplyVoters :many
-- Registers the batch's voters; a voter registers once (the first event
-- wins) and only new registrations are counted into their region. Returns
-- the new voters' facts (a replay keeps them for deciding votes in Go).
WITH input AS (
    SELECT unnest(@ords::integer[])               AS ord,
           unnest(@voter_ids::text[])             AS voter_id,
           unnest(@genders::text[])               AS gender,
           unnest(@birth_dates::date[])           AS birth_date,
           unnest(@regions::text[])               AS region,
           unnest(@cities::text[])                AS city,
           unnest(@registered_ats::timestamptz[]) AS registered_at,
           unnest(@partitions::integer[])         AS partition,
           unnest(@offsets::bigint[])             AS "offset"
),
open AS (
    SELECT i.*, EXISTS (SELECT 1 FROM registration_closures rc
                        WHERE rc.topic = 'voters' AND rc.partition = i.partition AND rc."offset" < i."offset") AS late
    FROM input i
),
refused AS (
    INSERT INTO refused_registrations (topic, partition, "offset")
    SELECT 'voters', o.partition, o."offset" FROM open o WHERE o.late
    ORDER BY 2, 3
    ON CONFLICT DO NOTHING
),
inserted AS (
    INSERT INTO voters (voter_id, gender, birth_date, region, city, registered_at)
    SELECT o.voter_id, o.gender, o.birth_date, o.region, o.city, o.registered_at
    FROM open o
    WHERE NOT o.late
    ORDER BY o.ord
    ON CONFLICT (voter_id) DO NOTHING
    RETURNING voter_id, region, gender, birth_date
),
counted AS (
    INSERT INTO regions AS t (region, registered_voters)
    SELECT n.region, count(*) FROM inserted n GROUP BY n.region ORDER BY n.region
    ON CONFLICT (region) DO UPDATE SET registered_voters = t.registered_voters + excluded.registered_voters
)
SELECT n.voter_id, n.region, n.gender, n.birth_date FROM inserted n;

-- name: ApplyCandidates :many
-- Registers or updates the batch's candidates; the latest event for a
-- candidate wins, so a corrected biography replaces the old one.
WITH input AS (
    SELECT unnest(@ords::integer[])          AS ord,
           unnest(@candidate_ids::text[])    AS candidate_id,
           unnest(@names::text[])            AS name,
           unnest(@parties::text[])          AS party,
           unnest(@biographies::text[])      AS biography,
           unnest(@platforms::text[])        AS platform,
           unnest(@photo_urls::text[])       AS photo_url,
           unnest(@partitions::integer[])    AS partition,
           unnest(@offsets::bigint[])        AS "offset",
           unnest(@contest_ids::text[])       AS contest_id
),
open AS (
    SELECT i.*, EXISTS (SELECT 1 FROM registration_closures rc
                        WHERE rc.topic = 'candidates' AND rc.partition = i.partition AND rc."offset" < i."offset") AS late
    FROM input i
),
refused AS (
    INSERT INTO refused_registrations (topic, partition, "offset")
    SELECT 'candidates', o.partition, o."offset" FROM open o WHERE o.late
    ORDER BY 2, 3
    ON CONFLICT DO NOTHING
),
default_contest AS (
    INSERT INTO contests (contest_id, name, kind)
    SELECT 'default', 'default', 'candidate' WHERE EXISTS (SELECT 1 FROM open o WHERE NOT o.late AND o.contest_id = 'default')
    ON CONFLICT (contest_id) DO NOTHING
)
-- A candidate's contest is fixed by its first registration (it decides
-- which votes count for it): a later one updates everything else.
INSERT INTO candidates AS t (candidate_id, name, party, biography, platform, photo_url, contest_id)
SELECT DISTINCT ON (o.candidate_id) o.candidate_id, o.name, o.party, o.biography, o.platform, o.photo_url,
       first_value(o.contest_id) OVER (PARTITION BY o.candidate_id ORDER BY o.ord)
FROM open o
WHERE NOT o.late
ORDER BY o.candidate_id, o.ord DESC
ON CONFLICT (candidate_id) DO UPDATE
SET name = excluded.name, party = excluded.party, biography = excluded.biography,
    platform = excluded.platform, photo_url = excluded.photo_url
RETURNING t.candidate_id;

-- name: ApplyContests :many
-- Registers the batch's contests; a contest registers once (the first
-- event wins: its regions decide who may vote in it).
WITH input AS (
    SELECT unnest(@ords::integer[])          AS ord,
           unnest(@contest_ids::text[])      AS contest_id,
           unnest(@names::text[])            AS name,
           unnest(@kinds::text[])            AS kind,
           unnest(@regions::text[])          AS regions,
           unnest(@partitions::integer[])    AS partition,
           unnest(@offsets::bigint[])        AS "offset"
),
open AS (
    SELECT i.*, EXISTS (SELECT 1 FROM registration_closures rc
                        WHERE rc.topic = 'contests' AND rc.partition = i.partition AND rc."offset" < i."offset") AS late
    FROM input i
),
refused AS (
    INSERT INTO refused_registrations (topic, partition, "offset")
    SELECT 'contests', o.partition, o."offset" FROM open o WHERE o.late
    ORDER BY 2, 3
    ON CONFLICT DO NOTHING
)
INSERT INTO contests (contest_id, name, kind, regions)
SELECT o.contest_id, o.name, o.kind, coalesce(string_to_array(nullif(o.regions, ''), E'\x1f'), '{}')
FROM open o
WHERE NOT o.late
ORDER BY o.ord
ON CONFLICT (contest_id) DO NOTHING
RETURNING contest_id;

-- name: CloseRegistration :exec
-- Records a partition's close marker; the first marker of a partition is
-- the one that counts.
INSERT INTO registration_closures (topic, partition, "offset", partitions, closed_at)
VALUES (@topic, @partition, @message_offset, @partitions, @closed_at)
ON CONFLICT (topic, partition) DO NOTHING;

-- name: RegistrationClosed :one
-- Whether registration is closed: all three registration topics carry a
-- close marker on every partition below the count their markers declare.
WITH declared AS (
    SELECT rc.topic, max(rc.partitions) AS n FROM registration_closures rc GROUP BY rc.topic
)
SELECT coalesce(count(*) = 3 AND bool_and(
           (SELECT count(*) FROM registration_closures rc WHERE rc.topic = d.topic AND rc.partition < d.n) = d.n),
       false)::boolean AS closed
FROM declared d;

-- name: LockRegistration :exec
-- Taken by every registration (exclusive) before it writes. One lock per
-- schema: a replay building beside the live projection never waits on it.
SELECT pg_advisory_xact_lock(7001, hashtext(current_schema()));

-- name: ShareRegistration :exec
-- Taken by every vote batch (shared) before it reads the register.
SELECT pg_advisory_xact_lock_shared(7001, hashtext(current_schema()));

-- name: GetRegistrationState :one
-- Registration at a glance: closed or not, votes held, registrations
-- refused. Counts only: nothing here names a voter.
SELECT held_votes, refused_registrations, closed_partitions FROM registration_state;

-- name: ListStationTallies :many
SELECT station_id, outcome, votes FROM station_tallies_summed ORDER BY station_id, outcome;

-- name: ApplyStationReports :exec
-- A station's first report fixes its region; its first close report (in
-- log order: all of a station's reports share a partition) closes it, and
-- fixes the ballots it reported (00037; -1 in @ballots: none reported).
WITH input AS (
    SELECT unnest(@ords::integer[])               AS ord,
           unnest(@station_ids::text[])           AS station_id,
           unnest(@regions::text[])               AS region,
           unnest(@closed::boolean[])             AS closed,
           unnest(@reported_ats::timestamptz[])   AS reported_at,
           unnest(@ballots::bigint[])             AS ballots
)
INSERT INTO stations AS s (station_id, region, closed_at, reported_ballots)
SELECT f.station_id, f.region, c.reported_at, nullif(c.ballots, -1)
FROM (SELECT DISTINCT ON (i.station_id) i.station_id, i.region FROM input i ORDER BY i.station_id, i.ord) f
LEFT JOIN (SELECT DISTINCT ON (i.station_id) i.station_id, i.reported_at, i.ballots FROM input i WHERE i.closed ORDER BY i.station_id, i.ord) c
  ON c.station_id = f.station_id
ORDER BY f.station_id
ON CONFLICT (station_id) DO UPDATE SET closed_at = coalesce(s.closed_at, excluded.closed_at),
    reported_ballots = CASE WHEN s.closed_at IS NULL THEN excluded.reported_ballots ELSE s.reported_ballots END;

-- name: ListStations :many
SELECT station_id, region, closed_at, reported_ballots FROM stations ORDER BY station_id;

-- name: RecordOperatorActions :exec
-- Each action once, at its log position.
INSERT INTO operator_actions (partition, "offset", action, who, host, at, detail, result)
SELECT unnest(@partitions::integer[]), unnest(@offsets::bigint[]), unnest(@actions::text[]), unnest(@whos::text[]),
       unnest(@hosts::text[]), unnest(@ats::timestamptz[]), unnest(@details::text[]), unnest(@results::text[])
ON CONFLICT (partition, "offset") DO NOTHING;

-- name: ListOperatorActions :many
SELECT partition, "offset", action, who, host, at, detail, result FROM operator_actions
ORDER BY at DESC, partition, "offset" LIMIT @max_rows;
