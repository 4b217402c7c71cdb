-- The contests read side (README, "Contests"). The reader role may read
-- every table here.

-- name: ListContests :many
SELECT contest_id, name, kind, regions FROM contests ORDER BY contest_id = 'default' DESC, contest_id;

-- name: GetContest :one
SELECT contest_id, name, kind, regions FROM contests WHERE contest_id = @contest_id;

-- name: ListContestCandidates :many
-- Every contest's candidates with their votes, most votes first.
SELECT c.contest_id, c.candidate_id, c.name, c.party, coalesce(t.votes, 0)::bigint AS votes
FROM candidates c LEFT JOIN candidate_tallies_summed t ON t.candidate_id = c.candidate_id
ORDER BY c.contest_id, votes DESC, c.candidate_id;

-- name: ListContestTurnout :many
SELECT contest_id, region, votes_cast FROM contest_turnout_summed ORDER BY contest_id, region;

-- name: ListRegisteredByRegion :many
SELECT region, registered_voters FROM regions ORDER BY region;

-- name: ListContestRegionTallies :many
SELECT c.contest_id, t.region, t.candidate_id, t.votes
FROM region_tallies_summed t JOIN candidates c ON c.candidate_id = t.candidate_id
ORDER BY c.contest_id, t.region, t.votes DESC, t.candidate_id;

-- name: ListContestRejections :many
SELECT contest_id, reason, count FROM rejection_tallies_summed ORDER BY contest_id, reason;

-- name: ListContestTimeline :many
-- Votes per minute per candidate of a contest, oldest first: when a
-- contest became decided, by cast time.
SELECT t.minute, t.candidate_id, t.votes
FROM timeline_summed t JOIN candidates c ON c.candidate_id = t.candidate_id
WHERE c.contest_id = @contest_id
ORDER BY t.minute, t.candidate_id;

-- name: ListStationsByRegion :many
-- Polling stations per region: how many there are and how many reported
-- closing.
SELECT region, count(*)::bigint AS total, count(closed_at)::bigint AS closed FROM stations GROUP BY region ORDER BY region;

-- name: ListContestDemographics :many
-- A contest's votes by the voter's gender and age band, per candidate.
SELECT d.dimension, d.bucket, d.candidate_id, d.votes
FROM demographic_tallies_summed d JOIN candidates c ON c.candidate_id = d.candidate_id
WHERE c.contest_id = @contest_id
ORDER BY d.dimension, d.bucket, d.candidate_id;
