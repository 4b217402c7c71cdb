-- Contests (contract v1.2): a ballot holds several races and measures.
-- "First vote wins" becomes per voter per contest; a vote is checked for
-- the voter's eligibility (the contest's regions) and for a candidate of
-- that contest. Everything of contract v1 is the contest 'default'.

-- +goose Up
CREATE TABLE contests (
    contest_id text PRIMARY KEY,
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('candidate', 'measure')),
    -- Empty: open to every region.
    regions    text[] NOT NULL DEFAULT '{}'
);
INSERT INTO contests (contest_id, name, kind)
SELECT 'default', 'default', 'candidate' WHERE EXISTS (SELECT 1 FROM candidates) OR EXISTS (SELECT 1 FROM ballots);

ALTER TABLE candidates ADD COLUMN contest_id text NOT NULL DEFAULT 'default';

ALTER TABLE ballots ADD COLUMN contest_id text NOT NULL DEFAULT 'default';
ALTER TABLE ballots DROP CONSTRAINT ballots_pkey;
ALTER TABLE ballots ADD PRIMARY KEY (voter_id, contest_id);

ALTER TABLE rejections ADD COLUMN contest_id text NOT NULL DEFAULT 'default';
ALTER TABLE held_votes ADD COLUMN contest_id text NOT NULL DEFAULT 'default';
ALTER TABLE staged_votes ADD COLUMN contest_id text NOT NULL DEFAULT 'default';
DROP INDEX held_votes_voter;
CREATE INDEX held_votes_voter ON held_votes (voter_id, contest_id, partition, "offset");
CREATE INDEX held_votes_contest ON held_votes (contest_id);

ALTER TABLE rejections DROP CONSTRAINT rejections_reason_check;
ALTER TABLE rejections ADD CONSTRAINT rejections_reason_check
    CHECK (reason IN ('duplicate_voter', 'unknown_voter', 'unknown_candidate', 'outside_polls', 'implausible_time',
                      'wrong_station', 'unknown_contest', 'not_eligible'));

ALTER TABLE rejection_tallies ADD COLUMN contest_id text NOT NULL DEFAULT 'default';
ALTER TABLE rejection_tallies DROP CONSTRAINT rejection_tallies_pkey;
ALTER TABLE rejection_tallies ADD PRIMARY KEY (contest_id, reason);

-- Votes cast per contest and region (regions.votes_cast stays the default
-- contest's, as contract v1 reads it).
CREATE TABLE contest_turnout (
    contest_id text NOT NULL,
    region     text NOT NULL,
    votes_cast bigint NOT NULL CHECK (votes_cast >= 0),
    PRIMARY KEY (contest_id, region)
);
INSERT INTO contest_turnout (contest_id, region, votes_cast)
SELECT 'default', region, votes_cast FROM regions WHERE votes_cast > 0;

ALTER TABLE registration_closures DROP CONSTRAINT registration_closures_topic_check;
ALTER TABLE registration_closures ADD CONSTRAINT registration_closures_topic_check CHECK (topic IN ('contests', 'candidates', 'voters'));
ALTER TABLE refused_registrations DROP CONSTRAINT refused_registrations_topic_check;
ALTER TABLE refused_registrations ADD CONSTRAINT refused_registrations_topic_check CHECK (topic IN ('contests', 'candidates', 'voters'));

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$s.contests, %1$s.contest_turnout TO votewatch_reader', s);
        EXECUTE format('GRANT SELECT (contest_id) ON %1$s.candidates TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE DELETE, TRUNCATE ON %1$s.contests, %1$s.contest_turnout FROM votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE contest_turnout;
ALTER TABLE rejection_tallies DROP CONSTRAINT rejection_tallies_pkey;
ALTER TABLE rejection_tallies DROP COLUMN contest_id;
ALTER TABLE rejection_tallies ADD PRIMARY KEY (reason);
ALTER TABLE staged_votes DROP COLUMN contest_id;
ALTER TABLE held_votes DROP COLUMN contest_id;
ALTER TABLE rejections DROP COLUMN contest_id;
ALTER TABLE ballots DROP CONSTRAINT ballots_pkey;
ALTER TABLE ballots DROP COLUMN contest_id;
ALTER TABLE ballots ADD PRIMARY KEY (voter_id);
ALTER TABLE candidates DROP COLUMN contest_id;
DROP TABLE contests;
