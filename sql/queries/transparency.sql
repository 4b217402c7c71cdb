-- name: TreeHeads :many
SELECT partition, size, root, next_offset FROM tree_heads ORDER BY partition;

-- name: TreeHashes :many
SELECT idx, hash FROM tree_hashes
WHERE partition = @partition AND idx = ANY(@idxs::bigint[]);

-- name: AppendTreeHashes :exec
INSERT INTO tree_hashes (partition, idx, hash)
SELECT @partition::integer, unnest(@idxs::bigint[]), unnest(@hashes::bytea[]);

-- name: AppendTreeLeaves :exec
INSERT INTO tree_leaves (partition, leaf, "offset", vote_id, body)
SELECT @partition::integer, unnest(@leaves::bigint[]), unnest(@offsets::bigint[]),
       CAST(nullif(unnest(@vote_ids::text[]), '') AS uuid), unnest(@bodies::text[]);

-- name: SetTreeHead :exec
-- The size only grows: a second builder racing this one (it cannot, under
-- the advisory lock) would fail on the hashes' primary key first.
INSERT INTO tree_heads (partition, size, root, next_offset, updated_at)
VALUES (@partition, @size, @root, @next_offset, now())
ON CONFLICT (partition) DO UPDATE
SET size = excluded.size, root = excluded.root, next_offset = excluded.next_offset, updated_at = excluded.updated_at
WHERE tree_heads.size <= excluded.size;

-- name: AddTreeCounts :exec
INSERT INTO tree_counts AS t (kind, contest, region, choice, n)
SELECT unnest(@kinds::text[]), unnest(@contests::text[]), unnest(@regions::text[]), unnest(@choices::text[]), unnest(@ns::bigint[])
ON CONFLICT (kind, contest, region, choice) DO UPDATE SET n = t.n + excluded.n;

-- name: TreeCounts :many
SELECT kind, contest, region, choice, n FROM tree_counts ORDER BY kind, contest, region, choice;

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
-- schedules and dead letters, between two offsets of one partition.
SELECT s."offset", 'schedule'::text AS kind FROM vote_schedules s
WHERE s.partition = sqlc.arg(vote_partition)::integer AND s."offset" >= @from_offset::bigint AND s."offset" < @to_offset::bigint
UNION ALL
SELECT d."offset", 'dead_letter' FROM dead_letters d
WHERE d.topic = 'votes' AND d.partition = sqlc.arg(vote_partition)::integer AND d."offset" >= @from_offset::bigint AND d."offset" < @to_offset::bigint;

-- name: TreeLeafOf :many
SELECT partition, leaf, "offset", body FROM tree_leaves
WHERE vote_id = CAST(sqlc.arg(vote_id)::text AS uuid) ORDER BY partition, leaf;

-- name: InsertCheckpoint :exec
INSERT INTO checkpoints (created_at, note, verifier_key) VALUES (@created_at, @note, @verifier_key);

-- name: LatestCheckpoint :many
SELECT id, created_at, note, verifier_key FROM checkpoints ORDER BY id DESC LIMIT 1;

-- name: CheckpointsSince :many
SELECT id, created_at, note, verifier_key FROM checkpoints
WHERE created_at > @since ORDER BY created_at, id LIMIT @max_rows;

-- name: VoteIDsInTrees :many
-- The vote_ids whose decision some leaf carries (a repeat's leaf carries
-- none).
SELECT DISTINCT CAST(vote_id AS text) FROM tree_leaves
WHERE vote_id = ANY(CAST(sqlc.arg(vote_ids)::text[] AS uuid[])) AND body NOT LIKE '%' || chr(10) || 'decision repeat' || chr(10) || '%';

-- name: MisroutedVotePositions :many
-- The votes a projection refused as misrouted (rule 0), between two offsets
-- of one partition: their leaves say so, and they take no vote_id.
SELECT m."offset" FROM misrouted_votes m
WHERE m.partition = sqlc.arg(vote_partition)::integer AND m."offset" >= @from_offset::bigint AND m."offset" < @to_offset::bigint;
