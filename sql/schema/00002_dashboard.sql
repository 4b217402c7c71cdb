-- Aggregates the dashboard shows beyond the tallies: votes by the voter's
-- gender and age band, and indexes for the "latest" lists.

-- +goose Up
-- age_band is the one definition of the age bands: age in whole years on
-- the day the vote was cast.
-- One expression, so the planner inlines it instead of calling a function
-- per row.
CREATE FUNCTION age_band(birth date, at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (ARRAY['under 18', '18-24', '25-34', '35-44', '45-54', '55-64', '65+'])[
        width_bucket(extract(year FROM age((at AT TIME ZONE 'UTC')::date, birth))::int, ARRAY[18, 25, 35, 45, 55, 65]) + 1]
$$;

CREATE TABLE demographic_tallies (
    dimension    text NOT NULL CHECK (dimension IN ('gender', 'age_band')),
    bucket       text NOT NULL,
    candidate_id text NOT NULL,
    votes        bigint NOT NULL CHECK (votes >= 0),
    PRIMARY KEY (dimension, bucket, candidate_id)
);

-- Ballots counted before this migration are folded in, so the new table
-- agrees with the others at once.
INSERT INTO demographic_tallies (dimension, bucket, candidate_id, votes)
SELECT 'gender', v.gender, b.candidate_id, count(*)
FROM ballots b JOIN voters v ON v.voter_id = b.voter_id
GROUP BY 2, 3;
INSERT INTO demographic_tallies (dimension, bucket, candidate_id, votes)
SELECT 'age_band', age_band(v.birth_date, b.cast_at), b.candidate_id, count(*)
FROM ballots b JOIN voters v ON v.voter_id = b.voter_id
GROUP BY 2, 3;

CREATE INDEX rejections_recorded_at ON rejections (recorded_at DESC);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at DESC);

-- +goose Down
DROP INDEX dead_letters_received_at;
DROP INDEX rejections_recorded_at;
DROP TABLE demographic_tallies;
DROP FUNCTION age_band(date, timestamptz);
