-- The benchmark's COPY ceiling (internal/bench): the ballot rows, into a
-- copy of ballots in a schema of the benchmark's own. The table is
-- unqualified, so the caller sets search_path to that schema.

-- name: CopyCeilingBallots :copyfrom
INSERT INTO ballots (voter_id, vote_id, region, cast_at)
VALUES ($1, $2, $3, $4);
