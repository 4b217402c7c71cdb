-- name: InsertIntakeVotes :many
-- Records unseen votes (a known vote_id is a retried POST) and returns them.
INSERT INTO intake.votes (vote_id, station, mac)
SELECT unnest(@vote_ids::text[])::uuid, @station::text, unnest(@macs::bytea[])
ON CONFLICT (vote_id) DO NOTHING
RETURNING vote_id::text;

-- name: IntakeMACs :many
-- The keyed digests of earlier votes (NULL for rows older than the key).
SELECT vote_id::text AS vote_id, mac FROM intake.votes WHERE vote_id IN (SELECT unnest(@vote_ids::text[])::uuid);

-- name: OutboxBacklog :one
-- Votes accepted but not yet relayed to Kafka, and the age of the oldest.
SELECT count(*)::bigint AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_seconds
FROM intake.outbox;

-- name: LockIntakeStation :exec
-- Taken shared by every acceptance of a station's votes and exclusively by
-- its close: a close waits for the votes being accepted, so they reach the
-- outbox (and the log) before its markers, and no vote is accepted after.
SELECT pg_advisory_xact_lock(7002, hashtext(@station::text));

-- name: LockIntakeStationShared :exec
SELECT pg_advisory_xact_lock_shared(7002, hashtext(@station::text));

-- name: IntakeStationClosed :one
SELECT EXISTS (SELECT 1 FROM intake.station_closures WHERE station = @station::text)::boolean AS closed;

-- name: CloseIntakeStation :many
-- Records a station's close; returns it only the first time.
INSERT INTO intake.station_closures (station, ballots) VALUES (@station::text, sqlc.narg(ballots)::bigint)
ON CONFLICT (station) DO NOTHING
RETURNING station;

-- name: ServeIntakeStations :many
-- Records the stations this intake serves, and returns those served
-- before under another region.
WITH input AS (
    SELECT unnest(@stations::text[]) AS station, unnest(@regions::text[]) AS region
),
added AS (
    INSERT INTO intake.stations (station, region) SELECT station, region FROM input ORDER BY 1
    ON CONFLICT (station) DO NOTHING
)
SELECT s.station, s.region AS served_region, i.region AS asked_region
FROM intake.stations s JOIN input i ON i.station = s.station
WHERE s.region <> i.region
ORDER BY s.station;
