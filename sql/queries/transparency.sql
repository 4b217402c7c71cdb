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
-- The size only grows (advance_tree_head, 00025: the projector cannot
-- UPDATE tree_heads itself): a second builder racing this one (it cannot,
-- under the advisory lock) would fail on the hashes' primary key first.
SELECT advance_tree_head(@partition::integer, @size::bigint, @root::bytea, @next_offset::bigint);

-- name: AddTreeCounts :exec
-- Through add_tree_counts (00025): the projector cannot write tree_counts
-- itself.
SELECT add_tree_counts(@kinds::text[], @contests::text[], @regions::text[], @choices::text[], @ns::bigint[]);

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
-- One vote_id's leaves, through tree_leaf_of (00025): the reader cannot
-- read tree_leaves, which would list every vote_id.
SELECT l.partition::integer AS partition, l.leaf::bigint AS leaf, l."offset"::bigint AS "offset", l.body::text AS body
FROM tree_leaf_of(CAST(sqlc.arg(vote_id)::text AS uuid)) l;

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
