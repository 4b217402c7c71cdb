-- The intake is no oracle, and its table no dictionary (issue 21 §4).
-- intake.votes kept an unsalted SHA-256 of each vote as published: with a
-- region's voter list and the few candidates, anyone reading the table (or
-- a backup) recomputed it and recovered every choice. And comparing it
-- with a re-posted vote told a station holding a receipt whether a guessed
-- choice was right (202 duplicate) or wrong (409).
--
-- The digest goes. In its place, mac: HMAC-SHA256, under the intake's
-- digest key (a 0600 file, never in the database), of what a station
-- already knows about its vote: vote_id, voter_id, contest_id, cast_at and
-- station; never the choice. A re-post of a known vote_id answers
-- "duplicate" whatever choice it carries (the first one stands); it is a
-- conflict only when the voter, contest, time or station differ. Rows
-- accepted before this migration have no mac: a re-post of one is a
-- duplicate.

-- +goose Up
ALTER TABLE intake.votes DROP COLUMN digest;
ALTER TABLE intake.votes ADD COLUMN mac bytea;

-- +goose Down
ALTER TABLE intake.votes DROP COLUMN mac;
ALTER TABLE intake.votes ADD COLUMN digest bytea NOT NULL DEFAULT ''::bytea;
