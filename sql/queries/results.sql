-- The routes of contract v1 (summary, candidates, regions, the CSV
-- export, the dashboard) answer for the default contest; /contests for
-- every contest (contests.sql).

-- name: GetTotals :one
SELECT
    (SELECT coalesce(sum(r.registered_voters), 0) FROM regions r)::bigint AS registered_voters,
    (SELECT count(*) FROM candidates c WHERE c.contest_id = 'default')::bigint AS candidates,
    (SELECT coalesce(sum(t.votes), 0) FROM candidate_tallies_summed t
     JOIN candidates c ON c.candidate_id = t.candidate_id WHERE c.contest_id = 'default')::bigint AS votes_cast,
    (SELECT count(*) FROM dead_letters_public d)::bigint                  AS dead_lettered,
    -- Go's zero time when nothing was applied yet: sqlc reads timestamptz as
    -- time.Time, and it types this expression as never NULL.
    coalesce((SELECT max(o.updated_at) FROM applied_offsets_merged o), '0001-01-01 00:00:00+00')::timestamptz AS updated_at,
    (SELECT count(*) FROM contests k)::bigint                             AS contests;

-- name: ListRejectionTallies :many
-- The default contest's, as contract v1 reads them.
SELECT reason, count FROM rejection_tallies_summed WHERE contest_id = 'default' ORDER BY reason;

-- name: ListCandidateResults :many
SELECT c.candidate_id, c.name, c.party, coalesce(t.votes, 0)::bigint AS votes
FROM candidates c
LEFT JOIN candidate_tallies_summed t ON t.candidate_id = c.candidate_id
WHERE c.contest_id = 'default'
ORDER BY votes DESC, c.candidate_id;

-- name: ListRegions :many
SELECT region, registered_voters, votes_cast FROM regions_summed ORDER BY region;

-- name: ListRegionTallies :many
SELECT t.region, t.candidate_id, t.votes FROM region_tallies_summed t JOIN candidates c ON c.candidate_id = t.candidate_id
WHERE c.contest_id = 'default' ORDER BY t.region, t.votes DESC, t.candidate_id;
