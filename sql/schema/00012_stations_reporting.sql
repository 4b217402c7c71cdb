-- Reporting progress (contract v1.2, the stations topic): each polling
-- station, the region it serves, and when it reported closing.

-- +goose Up
CREATE TABLE stations (
    station_id text PRIMARY KEY,
    region     text NOT NULL,
    closed_at  timestamptz
);

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$s.stations TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE DELETE, TRUNCATE ON %1$s.stations FROM votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE stations;
