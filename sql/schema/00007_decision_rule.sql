-- The decision rule depends only on the log (README, "How a vote is
-- decided"). Registration closes per partition, by a control event in the
-- log; a vote whose voter or candidate is not registered while registration
-- is open is held, not decided, until its registration arrives or
-- registration closes. A held vote also holds every later vote of its
-- voter, so "first vote wins" still follows log order.

-- +goose Up
-- One row per closed partition of the candidates and voters topics: where
-- its close marker stands and how many partitions its closer declared.
-- Registration is closed when every declared partition of both topics has
-- a row.
CREATE TABLE registration_closures (
    topic      text NOT NULL CHECK (topic IN ('candidates', 'voters')),
    partition  integer NOT NULL,
    "offset"   bigint NOT NULL,
    partitions integer NOT NULL CHECK (partitions > 0),
    closed_at  timestamptz NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- Registrations that came after their partition closed: refused, never
-- applied, and counted once per log position (a redelivery is not a second
-- refusal). Positions only: nothing here names a voter.
CREATE TABLE refused_registrations (
    topic     text NOT NULL CHECK (topic IN ('candidates', 'voters')),
    partition integer NOT NULL,
    "offset"  bigint NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);

-- Votes not decided yet. Like ballots, a row links a voter to a choice:
-- only the projector may read it.
CREATE TABLE held_votes (
    vote_id      uuid PRIMARY KEY,
    voter_id     text NOT NULL,
    candidate_id text NOT NULL,
    cast_at      timestamptz NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL
);
CREATE INDEX held_votes_voter ON held_votes (voter_id, partition, "offset");
CREATE INDEX held_votes_candidate ON held_votes (candidate_id);

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('REVOKE ALL ON %I.held_votes FROM votewatch_reader', current_schema());
    END IF;
END
$$;
-- +goose StatementEnd


-- +goose Down
DROP TABLE held_votes;
DROP TABLE refused_registrations;
DROP TABLE registration_closures;
