-- What replay and status need: when the active projection was built, and
-- the newest event time applied per partition (staleness).

-- +goose Up
CREATE TABLE projection_meta (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    built_at   timestamptz NOT NULL DEFAULT now(),
    built_by   text NOT NULL DEFAULT 'migrate',
    -- Per topic, the log positions the build read up to (JSON), for replays.
    watermarks jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO projection_meta DEFAULT VALUES;

ALTER TABLE applied_offsets ADD COLUMN last_event_at timestamptz;

-- Replay bulk-loads votes here before folding them in set-wise. Unlogged
-- and unindexed: it is scratch space, emptied after each load.
CREATE UNLOGGED TABLE staged_votes (
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    vote_id      uuid NOT NULL,
    voter_id     text NOT NULL,
    candidate_id text NOT NULL,
    cast_at      timestamptz NOT NULL
);

-- +goose Down
DROP TABLE staged_votes;
ALTER TABLE applied_offsets DROP COLUMN last_event_at;
DROP TABLE projection_meta;
