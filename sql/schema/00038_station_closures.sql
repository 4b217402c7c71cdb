-- Station closing binds (issue 24 §2): a station's close marker
-- (domain.StationClosed) on a votes partition, at its log position. A vote
-- through the station after the marker in its own partition is
-- after_station_close (README, "How a vote is counted", rule 6). Positions
-- and station ids only: nothing here names a voter or a choice.

-- +goose Up
-- The stations topic is a registration topic (rule 7): its close markers
-- and the stations refused after them.
ALTER TABLE registration_closures DROP CONSTRAINT registration_closures_topic_check;
ALTER TABLE registration_closures ADD CONSTRAINT registration_closures_topic_check CHECK (topic IN ('contests', 'candidates', 'voters', 'stations'));
ALTER TABLE refused_registrations DROP CONSTRAINT refused_registrations_topic_check;
ALTER TABLE refused_registrations ADD CONSTRAINT refused_registrations_topic_check CHECK (topic IN ('contests', 'candidates', 'voters', 'stations'));

CREATE TABLE station_closures (
    station_id text NOT NULL,
    partition  integer NOT NULL,
    "offset"   bigint NOT NULL,
    closed_at  timestamptz NOT NULL,
    PRIMARY KEY (station_id, partition)
);

-- +goose StatementBegin
DO $$
BEGIN
    -- Like vote_schedules: public control events at their positions, which
    -- the reader may read; the projector reads and adds, never changes.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %I.station_closures TO votewatch_reader', current_schema());
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('GRANT SELECT, INSERT ON %I.station_closures TO votewatch_projector', current_schema());
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I.station_closures FROM votewatch_projector', current_schema());
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE station_closures;
DELETE FROM registration_closures WHERE topic = 'stations';
DELETE FROM refused_registrations WHERE topic = 'stations';
ALTER TABLE registration_closures DROP CONSTRAINT registration_closures_topic_check;
ALTER TABLE registration_closures ADD CONSTRAINT registration_closures_topic_check CHECK (topic IN ('contests', 'candidates', 'voters'));
ALTER TABLE refused_registrations DROP CONSTRAINT refused_registrations_topic_check;
ALTER TABLE refused_registrations ADD CONSTRAINT refused_registrations_topic_check CHECK (topic IN ('contests', 'candidates', 'voters'));
