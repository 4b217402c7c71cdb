-- A station's close binds (issue 24 §2). The intake records each station
-- that reported closed, refuses its votes from then on (409
-- station_closed), and writes the close through its outbox after every vote
-- it accepted from the station: the close report on the stations topic, a
-- close marker on every votes partition (the rule's, rule 6), and the
-- operator action. A station closes once.

-- +goose Up
CREATE TABLE intake.station_closures (
    station   text PRIMARY KEY,
    closed_at timestamptz NOT NULL DEFAULT now(),
    ballots   bigint CHECK (ballots >= 0)
);

-- The stations this intake serves (its station tokens), recorded at each
-- start: every vote in the log stamped with a station must then have been
-- accepted by the intake, which `votewatch verify` checks by the keyed
-- digest (issue 24 §3).
-- A station's first opening fixes its region for the election (rule 7),
-- so the intake refuses to start serving it under another.
CREATE TABLE intake.stations (
    station      text PRIMARY KEY,
    region       text NOT NULL,
    served_since timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_intake') THEN
        GRANT SELECT, INSERT ON intake.station_closures, intake.stations TO votewatch_intake;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE intake.stations;
DROP TABLE intake.station_closures;
