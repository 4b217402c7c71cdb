-- The intake: votes polling stations submitted over HTTP, on their way to
-- the event log. Unlike the projection this is not derived from the log, so
-- it lives in its own schema, which a replay never rebuilds or swaps.

-- +goose Up
CREATE SCHEMA IF NOT EXISTS intake;

-- One row per accepted vote_id, so a station's retried POST is recognised.
-- The digest (SHA-256 of the vote as published) tells a retry from a
-- different vote reusing the id; the choice itself is not stored here.
CREATE TABLE intake.votes (
    vote_id     uuid PRIMARY KEY,
    station     text NOT NULL,
    digest      bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The transactional outbox: watermill-sql's PostgreSQL queue schema, written
-- in the request's transaction and drained to Kafka by Watermill's
-- forwarder, which deletes each row once Kafka has acknowledged it. Created
-- here rather than by watermill-sql so concurrent publishers never race to
-- create it.
CREATE TABLE intake.outbox (
    "offset"   bigserial PRIMARY KEY,
    uuid       varchar(36) NOT NULL,
    payload    json DEFAULT NULL,
    metadata   json DEFAULT NULL,
    acked      boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP SCHEMA intake CASCADE;
