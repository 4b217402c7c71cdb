-- name: GetWatermark :one
-- Changes whenever the projection applies a batch: what live clients poll.
-- updated_at alone can miss a batch: it is the batch's transaction start,
-- so a batch that began first but commits last leaves max(updated_at)
-- where it was; and the sum of next offsets misses a batch of messages
-- below their partition's next offset (applied out of order, or
-- redelivered). Every batch counts itself in batches, which catches both.
SELECT coalesce(max(updated_at), 'epoch'::timestamptz)::timestamptz AS updated_at,
       coalesce(sum(next_offset), 0)::bigint AS applied,
       coalesce(sum(batches), 0)::bigint AS batches
FROM applied_offsets_merged;

-- name: ListPartyResults :many
-- Independents (party '') stand for no party: they are not one.
SELECT c.party, count(*)::bigint AS candidates, coalesce(sum(t.votes), 0)::bigint AS votes
FROM candidates c
LEFT JOIN candidate_tallies_summed t ON t.candidate_id = c.candidate_id
WHERE c.contest_id = 'default' AND c.party <> ''
GROUP BY c.party
ORDER BY votes DESC, c.party;

-- name: ListDemographicTallies :many
SELECT d.dimension, d.bucket, d.candidate_id, d.votes
FROM demographic_tallies_summed d JOIN candidates c ON c.candidate_id = d.candidate_id
WHERE c.contest_id = 'default'
ORDER BY d.dimension, d.bucket, d.candidate_id;

-- name: ListTimeline :many
-- The last @minutes minutes that have votes, per candidate.
SELECT t.minute, t.candidate_id, t.votes
FROM timeline_summed t JOIN candidates c ON c.candidate_id = t.candidate_id
WHERE c.contest_id = 'default'
  AND t.minute > (SELECT max(x.minute) FROM timeline x) - make_interval(mins => @minutes::integer)
ORDER BY t.minute, t.candidate_id;

-- name: ListRecentRejections :many
-- Reason and times to the minute only: never the voter, never the
-- candidate, and no order within a minute (rejections_public, 00005).
SELECT reason, cast_minute, recorded_minute FROM rejections_public
ORDER BY recorded_minute DESC, cast_minute DESC, reason LIMIT @max_rows;

-- name: ListRecentDeadLetters :many
SELECT topic, partition, "offset", reason, received_minute
FROM dead_letters_public ORDER BY received_minute DESC, topic, partition, "offset" LIMIT @max_rows;

-- name: ListResultRows :many
-- Every region × candidate of the default contest (or, with
-- @every_contest, of every contest, in the contest's regions), zeros
-- included, for the results export; votes_cast is the contest's in the
-- region.
SELECT c.contest_id, g.region, c.candidate_id, c.name, c.party, coalesce(t.votes, 0)::bigint AS votes,
       coalesce(ct.votes_cast, 0)::bigint AS votes_cast, g.registered_voters
FROM regions g
CROSS JOIN candidates c
LEFT JOIN contests k ON k.contest_id = c.contest_id
LEFT JOIN region_tallies_summed t ON t.region = g.region AND t.candidate_id = c.candidate_id
LEFT JOIN contest_turnout_summed ct ON ct.contest_id = c.contest_id AND ct.region = g.region
WHERE (c.contest_id = 'default' OR @every_contest::boolean)
  AND (k.contest_id IS NULL OR cardinality(k.regions) = 0 OR g.region = ANY(k.regions))
ORDER BY c.contest_id = 'default' DESC, c.contest_id, g.region, votes DESC, c.candidate_id;
