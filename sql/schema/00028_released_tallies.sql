-- What is published (issue 21 §3; README, "What is published"). The count
-- is exact in the *_summed views; the public reads only what was released
-- from it, here. A releaser (projections.Releaser: one at a time, under an
-- advisory lock, in the projector) moves a cell from its released counts
-- to its exact ones once they differ by at least k votes, or at once when
-- the polls are closed (domain.Disclosure). Kept in the database, the
-- released state is the same for every API replica and survives a
-- restart: nothing released once is released again smaller, and a restart
-- cannot publish a cell's small move.

-- +goose Up
-- A cell is one row of a breakdown in one contest: a region, a gender, an
-- age band. Its candidates' counts are released together.
CREATE TABLE released_cells (
    contest_id   text NOT NULL,
    dimension    text NOT NULL CHECK (dimension IN ('region', 'gender', 'age_band')),
    bucket       text NOT NULL,
    candidate_id text NOT NULL,
    votes        bigint NOT NULL CHECK (votes >= 0),
    PRIMARY KEY (contest_id, dimension, bucket, candidate_id)
);

-- The public timeline: votes released per minute (by release time, not
-- cast time: a timeline by cast minute would be a second breakdown whose
-- cells move by single votes).
CREATE TABLE released_steps (
    minute       timestamptz NOT NULL,
    contest_id   text NOT NULL,
    candidate_id text NOT NULL,
    votes        bigint NOT NULL,
    PRIMARY KEY (minute, contest_id, candidate_id)
);

-- One row: how many releases there were, the newest's time, whether the
-- polls were closed at it (every figure exact from then on), and the k it
-- stepped by (a read API with a larger k refuses to publish: its steps
-- would be too small).
CREATE TABLE release_state (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    releases     bigint NOT NULL DEFAULT 0,
    released_at  timestamptz NOT NULL DEFAULT 'epoch',
    polls_closed boolean NOT NULL DEFAULT false,
    min_cell     integer NOT NULL DEFAULT 0
);
INSERT INTO release_state DEFAULT VALUES;

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$s.released_cells, %1$s.released_steps, %1$s.release_state TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE DELETE, TRUNCATE ON %1$s.released_cells, %1$s.released_steps, %1$s.release_state FROM votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE release_state;
DROP TABLE released_steps;
DROP TABLE released_cells;
