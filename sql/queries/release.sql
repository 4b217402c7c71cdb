-- The released tallies (00028; README, "What is published"): the
-- releaser's reads and writes, and the public read side, which reads no
-- exact tally.

-- name: TryReleaseLock :one
-- One releaser at a time across every process of the database: the others
-- skip their turn (a transaction-level lock, gone at commit).
SELECT pg_try_advisory_xact_lock(7221003)::boolean AS locked;

-- name: GetPollsClosing :one
-- Whether an operator closed the polls, and the close of each votes
-- partition's latest schedule (domain.PollsClosed decides).
SELECT EXISTS (SELECT FROM operator_actions a WHERE a.action = 'close_polls' AND a.result = 'ok')::boolean AS closed_by_operator,
       coalesce((SELECT array_agg(s.polls_close) FROM (
           SELECT DISTINCT ON (v.partition) v.polls_close FROM vote_schedules v ORDER BY v.partition, v."offset" DESC) s),
           '{}')::timestamptz[] AS latest_closes;

-- name: ListExactCells :many
-- The exact count of every cell: a contest's region and demographic rows,
-- per candidate. Only the releaser reads it.
SELECT c.contest_id, 'region'::text AS dimension, t.region AS bucket, t.candidate_id, t.votes
FROM region_tallies_summed t JOIN candidates c ON c.candidate_id = t.candidate_id
UNION ALL
SELECT c.contest_id, d.dimension, d.bucket, d.candidate_id, d.votes
FROM demographic_tallies_summed d JOIN candidates c ON c.candidate_id = d.candidate_id;

-- name: ListReleasedCells :many
SELECT contest_id, dimension, bucket, candidate_id, votes FROM released_cells
ORDER BY contest_id, dimension, bucket, candidate_id;

-- name: UpsertReleasedCells :exec
INSERT INTO released_cells (contest_id, dimension, bucket, candidate_id, votes)
SELECT unnest(@contest_ids::text[]), unnest(@dimensions::text[]), unnest(@buckets::text[]),
       unnest(@candidate_ids::text[]), unnest(@votes::bigint[])
ON CONFLICT (contest_id, dimension, bucket, candidate_id) DO UPDATE SET votes = excluded.votes;

-- name: AddReleasedSteps :exec
-- What a release added to each candidate, in its minute (one row per
-- contest and candidate in the arrays).
INSERT INTO released_steps (minute, contest_id, candidate_id, votes)
SELECT date_trunc('minute', @at::timestamptz), unnest(@contest_ids::text[]), unnest(@candidate_ids::text[]), unnest(@votes::bigint[])
ON CONFLICT (minute, contest_id, candidate_id) DO UPDATE SET votes = released_steps.votes + excluded.votes;

-- name: MarkReleased :exec
-- min_cell keeps the smallest k any releaser stepped by: a public reader
-- with a larger k then refuses to publish (ErrDisclosureMismatch), even
-- after a releaser with the larger k took over.
UPDATE release_state SET releases = releases + 1, released_at = @released_at, polls_closed = @polls_closed,
    min_cell = CASE WHEN min_cell = 0 THEN @min_cell::integer ELSE least(min_cell, @min_cell::integer) END;

-- name: GetReleaseState :one
SELECT releases, released_at, polls_closed, min_cell FROM release_state;

-- name: ListReleasedSteps :many
SELECT minute, contest_id, candidate_id, votes FROM released_steps ORDER BY contest_id, minute, candidate_id;

-- name: ListCandidatesPublic :many
-- Every contest's candidates, without a count.
SELECT contest_id, candidate_id, name, party FROM candidates ORDER BY contest_id, candidate_id;

-- name: GetPublicTotals :one
SELECT (SELECT coalesce(sum(r.registered_voters), 0) FROM regions r)::bigint AS registered_voters,
       (SELECT count(*) FROM dead_letters_public d)::bigint AS dead_lettered,
       (SELECT count(*) FROM contests k)::bigint AS contests;
