-- What a replay reads and marks besides the votes (replay_direct.sql).

-- name: MarkBuilt :exec
UPDATE projection_meta SET built_at = now(), built_by = @built_by, watermarks = @watermarks;

-- name: GetProjectionMeta :one
SELECT built_at, built_by, watermarks FROM projection_meta;
