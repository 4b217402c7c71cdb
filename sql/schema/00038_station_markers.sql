-- The stations register and station closing, by position (issue 24 §2,
-- §3): a station's opening (domain.StationOpened) and close
-- (domain.StationClosed) markers on each votes partition, at their log
-- positions. A vote through a station not opened before it in its own
-- partition is unknown_station, one after its close after_station_close
-- (README, "How a vote is counted", rules 6 and 7). Positions, station ids
-- and regions only: nothing here names a voter or a choice.

-- +goose Up
CREATE TABLE station_openings (
    station_id text NOT NULL,
    partition  integer NOT NULL,
    "offset"   bigint NOT NULL,
    region     text NOT NULL,
    opened_at  timestamptz NOT NULL,
    PRIMARY KEY (station_id, partition)
);

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
        EXECUTE format('GRANT SELECT ON %1$I.station_closures, %1$I.station_openings TO votewatch_reader', current_schema());
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('GRANT SELECT, INSERT ON %1$I.station_closures, %1$I.station_openings TO votewatch_projector', current_schema());
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %1$I.station_closures, %1$I.station_openings FROM votewatch_projector', current_schema());
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE station_closures;
DROP TABLE station_openings;
