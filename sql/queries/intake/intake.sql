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
