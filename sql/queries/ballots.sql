-- name: BallotStatus :many
-- What became of one vote: counted, rejected (with the reason) or pending
-- (held for its registration). Through ballot_status (00025), the only way
-- the reader sees anything of a single vote: one vote_id at a time, never
-- a list of them.
SELECT s.status::text AS status, coalesce(s.reason, '')::text AS reason
FROM ballot_status(CAST(sqlc.arg(vote_id)::text AS uuid)) s;
