-- What `votewatch audit` compares with its independent recount
-- (audit.Recount), table by table. Run in one REPEATABLE READ
-- transaction, so every table is read at the same applied offsets.

-- name: RecountContests :many
SELECT contest_id, name, kind, array_to_string(regions, ',')::text AS regions FROM contests;

-- name: RecountContestTurnout :many
SELECT contest_id, region, votes_cast FROM contest_turnout_summed;

-- name: RecountCandidates :many
SELECT candidate_id, name, party, biography, platform, photo_url, contest_id FROM candidates;

-- name: RecountRegions :many
SELECT region, registered_voters, votes_cast FROM regions_summed;

-- name: RecountBallots :many
SELECT voter_id, vote_id::text AS vote_id, region, cast_at, coalesce(station_id, '')::text AS station_id, contest_id FROM ballots;

-- name: RecountRejections :many
SELECT vote_id::text AS vote_id, reason, voter_id, cast_at, coalesce(station_id, '')::text AS station_id, contest_id FROM rejections;

-- name: RecountHeld :many
SELECT vote_id::text AS vote_id FROM held_votes;

-- name: RecountCandidateTallies :many
SELECT candidate_id, votes FROM candidate_tallies_summed;

-- name: RecountRegionTallies :many
SELECT region, candidate_id, votes FROM region_tallies_summed;

-- name: RecountRejectionTallies :many
SELECT contest_id, reason, count FROM rejection_tallies_summed;

-- name: RecountTimeline :many
SELECT minute, candidate_id, votes FROM timeline_summed;

-- name: RecountDemographics :many
SELECT dimension, bucket, candidate_id, votes FROM demographic_tallies_summed;

-- name: RecountStations :many
SELECT station_id, outcome, votes FROM station_tallies_summed;

-- name: RecountRefused :many
SELECT topic, partition, "offset" FROM refused_registrations;

-- name: RecountMisrouted :many
SELECT partition, "offset" FROM misrouted_votes;

-- name: RecountDeadLetters :many
SELECT topic, partition, "offset" FROM dead_letters;
