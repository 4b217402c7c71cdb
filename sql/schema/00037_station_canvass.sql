-- The canvass (issue 24 §2, contract v1.3): a station's close report may
-- carry the ballots it cast; reporting sets them beside the ballots
-- counted from the station, and flags a difference.

-- +goose Up
ALTER TABLE stations ADD COLUMN reported_ballots bigint CHECK (reported_ballots >= 0);

-- Ballots counted per station: distinct voters whose counted ballots came
-- through it (a voter's ballot is one vote per contest). The reader may
-- not read ballots (00005); this view gives it per-station counts only,
-- which station_tallies already publish in kind.
CREATE VIEW station_canvass AS
SELECT s.station_id, s.region, s.closed_at, s.reported_ballots, coalesce(b.ballots, 0)::bigint AS counted_ballots
FROM stations s
LEFT JOIN (SELECT station_id, count(DISTINCT voter_id) AS ballots FROM ballots WHERE station_id IS NOT NULL GROUP BY station_id) b
  ON b.station_id = s.station_id;

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$s.station_canvass TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE ALL ON %1$s.station_canvass FROM votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW station_canvass;
ALTER TABLE stations DROP COLUMN reported_ballots;
