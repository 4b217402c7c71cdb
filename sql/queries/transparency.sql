-- name: LogHead :many
-- The tree's newest epoch: its size and root (no row: the empty tree).
SELECT size, root FROM log_epochs ORDER BY size DESC LIMIT 1;

-- name: LogCursors :many
-- Each partition's offset after its last leaf in the tree.
SELECT u.partition, max(u.next_offset)::bigint AS next_offset
FROM (SELECT unnest(partitions)::integer AS partition, unnest(next_offsets)::bigint AS next_offset FROM log_epochs) u
GROUP BY u.partition ORDER BY u.partition;

-- name: LogEpochs :many
SELECT size, from_size, root, partitions, next_offsets FROM log_epochs
WHERE size > @after ORDER BY size;

-- name: InsertLogEpoch :exec
INSERT INTO log_epochs (size, from_size, root, partitions, next_offsets)
VALUES (@size, @from_size, @root, @partitions::integer[], @next_offsets::bigint[]);

-- name: LogHashes :many
SELECT idx, hash FROM log_hashes WHERE idx = ANY(@idxs::bigint[]);

-- name: LogHashRange :many
SELECT idx, hash FROM log_hashes WHERE idx >= @first AND idx < @last ORDER BY idx;

-- name: AppendLogHashes :exec
INSERT INTO log_hashes (idx, hash)
SELECT unnest(@idxs::bigint[]), unnest(@hashes::bytea[]);

-- name: AppendLogLeaves :exec
INSERT INTO log_leaves (leaf, partition, "offset", vote_ref, decides, body)
SELECT unnest(@leaves::bigint[]), unnest(@partitions::integer[]), unnest(@offsets::bigint[]),
       nullif(unnest(@vote_refs::bytea[]), ''::bytea), unnest(@decides::boolean[]), unnest(@bodies::text[]);

-- name: LogLeafBodies :many
SELECT leaf, body FROM log_leaves WHERE leaf >= @first AND leaf < @last ORDER BY leaf;

-- name: AddLogCounts :exec
INSERT INTO log_counts (epoch, kind, contest, region, choice, n)
SELECT @epoch::bigint, unnest(@kinds::text[]), unnest(@contests::text[]), unnest(@regions::text[]), unnest(@choices::text[]), unnest(@ns::bigint[]);

-- name: LogCountsUpTo :many
SELECT kind, contest, region, choice, sum(n)::bigint AS n FROM log_counts
WHERE epoch <= @size GROUP BY kind, contest, region, choice ORDER BY kind, contest, region, choice;

-- name: VoteDecisions :many
-- What the projection decided of each vote_id: counted (with the ballot's
-- voter, contest and region), rejected (with the reason) or pending. A
-- vote_id in none of them is not applied yet.
SELECT b.vote_id::text AS vote_id, b.voter_id, b.contest_id, 'counted'::text AS status, ''::text AS reason, b.region
FROM ballots b WHERE b.vote_id = ANY(@vote_ids::uuid[])
UNION ALL
SELECT r.vote_id::text, r.voter_id, r.contest_id, 'rejected', r.reason, ''
FROM rejections r WHERE r.vote_id = ANY(@vote_ids::uuid[])
UNION ALL
SELECT h.vote_id::text, h.voter_id, h.contest_id, 'pending', '', ''
FROM held_votes h WHERE h.vote_id = ANY(@vote_ids::uuid[]);

-- name: AppliedVotePositions :many
-- The messages of the votes topic a projection applied that are not votes:
-- schedules, stations' openings and closes, and dead letters, between two
-- offsets of one partition.
SELECT s."offset", 'schedule'::text AS kind FROM vote_schedules s
WHERE s.partition = sqlc.arg(vote_partition)::integer AND s."offset" >= @from_offset::bigint AND s."offset" < @to_offset::bigint
UNION ALL
SELECT DISTINCT o."offset", 'station' FROM station_openings o
WHERE o.partition = sqlc.arg(vote_partition)::integer AND o."offset" >= @from_offset::bigint AND o."offset" < @to_offset::bigint
UNION ALL
SELECT DISTINCT c."offset", 'station' FROM station_closures c
WHERE c.partition = sqlc.arg(vote_partition)::integer AND c."offset" >= @from_offset::bigint AND c."offset" < @to_offset::bigint
UNION ALL
SELECT d."offset", 'dead_letter' FROM dead_letters d
WHERE d.topic = 'votes' AND d.partition = sqlc.arg(vote_partition)::integer AND d."offset" >= @from_offset::bigint AND d."offset" < @to_offset::bigint;

-- name: LogLeafOf :many
-- The leaves naming a vote (by vote_ref), deciding one first.
SELECT leaf, body FROM log_leaves WHERE vote_ref = @vote_ref ORDER BY decides DESC, leaf;

-- name: VoteRefsInLog :many
-- The vote_refs whose decision some leaf carries (a repeat's leaf carries
-- none).
SELECT DISTINCT vote_ref FROM log_leaves WHERE vote_ref = ANY(@vote_refs::bytea[]) AND decides;

-- name: InsertLogCheckpoint :exec
INSERT INTO log_checkpoints (size, created_at, note, verifier_key) VALUES (@size, @created_at, @note, @verifier_key);

-- name: LatestLogCheckpoint :many
SELECT size, created_at, note, verifier_key FROM log_checkpoints ORDER BY size DESC LIMIT 1;

-- name: LogCheckpointsSince :many
SELECT size, created_at, note, verifier_key FROM log_checkpoints
WHERE created_at > @since ORDER BY created_at, size LIMIT @max_rows;

-- name: InsertCosignature :exec
INSERT INTO log_cosignatures (size, witness, line) VALUES (@size, @witness, @line)
ON CONFLICT (size, witness) DO NOTHING;

-- name: Cosignatures :many
SELECT witness, line FROM log_cosignatures WHERE size = @size ORDER BY witness;

-- name: LatestCosignedCheckpoint :many
-- The newest checkpoint at least min_cosigners witnesses cosigned.
SELECT c.size, c.created_at, c.note, c.verifier_key FROM log_checkpoints c
WHERE (SELECT count(*) FROM log_cosignatures w WHERE w.size = c.size) >= @min_cosigners::bigint
ORDER BY c.size DESC LIMIT 1;

-- name: LatestKeyRotation :many
SELECT verifier_key FROM log_key_rotations ORDER BY id DESC LIMIT 1;

-- name: InsertKeyRotation :exec
INSERT INTO log_key_rotations (verifier_key, reason) VALUES (@verifier_key, @reason);

-- name: MisroutedVotePositions :many
-- The votes a projection refused as misrouted (rule 0), between two offsets
-- of one partition: their leaves say so, and they take no vote_id.
SELECT m."offset" FROM misrouted_votes m
WHERE m.partition = sqlc.arg(vote_partition)::integer AND m."offset" >= @from_offset::bigint AND m."offset" < @to_offset::bigint;
