-- No relation pairs a voter or a vote_id with a choice (issue 21 §2): the
-- candidate lives only in the aggregate tallies. A ballot keeps who voted
-- in which contest, where and when, and that it counted; whom for went
-- into the tallies and the tree's salted commitment when it was decided.
--
-- A held vote is not decided yet, so its choice is still needed: it keeps
-- the vote's message as the log holds it (held_votes.message), the choice
-- sealed to the tally key when the vote was sealed (contract v2), and the
-- store opens it with the tally key when it decides the vote again. A
-- clear (v1) vote's message holds its candidate_id in clear, as the log
-- does: an election that keeps choices secret requires sealed votes
-- (--require-sealed). What `verify` can no longer check from the database
-- alone (a ballot's candidate), `audit` checks from the log and the key.

-- +goose Up
ALTER TABLE ballots DROP COLUMN candidate_id;

DROP INDEX held_votes_candidate;
ALTER TABLE held_votes ADD COLUMN message bytea;
-- A held vote from before this migration becomes the clear message it
-- came as (a sealed vote was opened before it was held; there is no key
-- here to seal it again).
UPDATE held_votes SET message = convert_to(json_strip_nulls(json_build_object(
    'vote_id', vote_id, 'voter_id', voter_id, 'candidate_id', candidate_id,
    'cast_at', to_char(cast_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'station_id', station_id, 'station_region', station_region, 'contest_id', contest_id))::text, 'UTF8');
ALTER TABLE held_votes ALTER COLUMN message SET NOT NULL, DROP COLUMN candidate_id;

-- +goose Down
-- The choices are gone from the database: a replay puts them back.
ALTER TABLE held_votes ADD COLUMN candidate_id text NOT NULL DEFAULT '';
ALTER TABLE held_votes DROP COLUMN message;
CREATE INDEX held_votes_candidate ON held_votes (candidate_id);
ALTER TABLE ballots ADD COLUMN candidate_id text NOT NULL DEFAULT '';
