-- Aggregates the dashboard shows beyond the tallies: votes by the voter's
-- gender and age band, and indexes for the "latest" lists.

-- +goose Up
-- age_band is the one definition of the age bands: age in whole years on
-- the day the vote was cast.
CREATE FUNCTION age_band(birth date, at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN y < 18 THEN 'under 18'
        WHEN y < 25 THEN '18-24'
        WHEN y < 35 THEN '25-34'
        WHEN y < 45 THEN '35-44'
        WHEN y < 55 THEN '45-54'
        WHEN y < 65 THEN '55-64'
        ELSE '65+'
    END
    FROM (SELECT extract(year FROM age((at AT TIME ZONE 'UTC')::date, birth))::int AS y) a
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
