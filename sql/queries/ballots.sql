-- name: BallotStatus :many
-- What became of one vote: counted, rejected (with the reason) or pending
-- (held for its registration). Through ballot_status, the only way the
-- reader sees anything of a single vote.
SELECT status::text AS status, coalesce(reason, '')::text AS reason, decided_at::timestamptz AS decided_at
FROM ballot_status(CAST(sqlc.arg(vote_id)::text AS uuid));
