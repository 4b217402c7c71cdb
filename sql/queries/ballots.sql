-- name: BallotStatus :many
-- What became of one vote: counted, rejected (with the reason) or pending
-- (held for its registration). Through ballot_statuses, the only way the
-- reader sees anything of a single vote.
SELECT status, coalesce(reason, '')::text AS reason
FROM ballot_statuses WHERE vote_id = CAST(sqlc.arg(vote_id)::text AS uuid)
LIMIT 1;
