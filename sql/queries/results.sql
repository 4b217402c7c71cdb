-- name: GetTotals :one
SELECT
    (SELECT coalesce(sum(r.registered_voters), 0) FROM regions r)::bigint AS registered_voters,
    (SELECT count(*) FROM candidates c)::bigint                           AS candidates,
    (SELECT coalesce(sum(t.votes), 0) FROM candidate_tallies t)::bigint   AS votes_cast,
    (SELECT count(*) FROM dead_letters_public d)::bigint                  AS dead_lettered,
    (SELECT max(o.updated_at) FROM applied_offsets o)::timestamptz        AS updated_at;

-- name: ListRejectionTallies :many
-- The default contest's, as contract v1 reads them.
SELECT reason, count FROM rejection_tallies WHERE contest_id = 'default' ORDER BY reason;

-- name: ListCandidateResults :many
SELECT c.candidate_id, c.name, c.party, coalesce(t.votes, 0)::bigint AS votes
FROM candidates c
LEFT JOIN candidate_tallies t ON t.candidate_id = c.candidate_id
ORDER BY votes DESC, c.candidate_id;

-- name: ListRegions :many
SELECT region, registered_voters, votes_cast FROM regions ORDER BY region;

-- name: ListRegionTallies :many
SELECT region, candidate_id, votes FROM region_tallies ORDER BY region, votes DESC, candidate_id;

-- name: GetRegion :one
SELECT region, registered_voters, votes_cast FROM regions WHERE region = @region;

-- name: ListTalliesInRegion :many
SELECT candidate_id, votes FROM region_tallies WHERE region = @region ORDER BY votes DESC, candidate_id;
