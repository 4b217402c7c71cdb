-- The read model. Every table here is derived from the event log and can be
-- dropped and rebuilt by replaying it; nothing is the source of truth.

-- +goose Up
CREATE TABLE candidates (
    candidate_id text PRIMARY KEY,
    name         text NOT NULL,
    party        text NOT NULL,
    biography    text NOT NULL DEFAULT '',
    platform     text NOT NULL DEFAULT '',
    photo_url    text NOT NULL DEFAULT ''
);

-- Voters keep what the breakdowns need; the name is not stored: no read
-- path uses it and it would only make the table more sensitive.
CREATE TABLE voters (
    voter_id      text PRIMARY KEY,
    gender        text NOT NULL,
    birth_date    date NOT NULL,
    region        text NOT NULL,
    city          text NOT NULL,
    registered_at timestamptz NOT NULL
);

-- One ballot per voter: the voter_id key decides "first vote wins" and,
-- together with vote_id, tells a redelivery from a second vote without a
-- second unique index on the hot path.
CREATE TABLE ballots (
    voter_id     text PRIMARY KEY,
    vote_id      uuid NOT NULL,
    candidate_id text NOT NULL,
    region       text NOT NULL,
    cast_at      timestamptz NOT NULL
);

-- Rejected votes, once per vote_id. The candidate is deliberately absent:
-- a rejection must not reveal whom a voter tried to vote for.
CREATE TABLE rejections (
    vote_id     uuid PRIMARY KEY,
    reason      text NOT NULL CHECK (reason IN ('duplicate_voter', 'unknown_voter', 'unknown_candidate')),
    voter_id    text NOT NULL,
    cast_at     timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE candidate_tallies (
    candidate_id text PRIMARY KEY,
    votes        bigint NOT NULL CHECK (votes >= 0)
);

CREATE TABLE regions (
    region            text PRIMARY KEY,
    registered_voters bigint NOT NULL DEFAULT 0 CHECK (registered_voters >= 0),
    votes_cast        bigint NOT NULL DEFAULT 0 CHECK (votes_cast >= 0)
);

CREATE TABLE region_tallies (
    region       text NOT NULL,
    candidate_id text NOT NULL,
    votes        bigint NOT NULL CHECK (votes >= 0),
    PRIMARY KEY (region, candidate_id)
);

CREATE TABLE rejection_tallies (
    reason text PRIMARY KEY,
    count  bigint NOT NULL CHECK (count >= 0)
);

-- Votes per minute per candidate, for the timeline.
CREATE TABLE timeline (
    minute       timestamptz NOT NULL,
    candidate_id text NOT NULL,
    votes        bigint NOT NULL CHECK (votes >= 0),
    PRIMARY KEY (minute, candidate_id)
);

-- Next offset to apply per partition, written in the same transaction as
-- the tallies it produced. It tells how far the projection has got (lag,
-- staleness, whether registration is complete) independently of the
-- consumer group's own commits, which lag behind by up to a second.
CREATE TABLE applied_offsets (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Messages that could never be applied (not JSON of the topic's shape).
-- They are also published to <topic>.dlq; this copy lets the read side
-- count and show them without reading Kafka.
CREATE TABLE dead_letters (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    reason      text NOT NULL,
    payload     bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE applied_offsets;
DROP TABLE timeline;
DROP TABLE rejection_tallies;
DROP TABLE region_tallies;
DROP TABLE regions;
DROP TABLE candidate_tallies;
DROP TABLE rejections;
DROP TABLE ballots;
DROP TABLE voters;
DROP TABLE candidates;
