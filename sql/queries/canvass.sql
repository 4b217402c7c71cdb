-- name: ListStationCanvass :many
-- The canvass: each station's reported ballots beside the ballots counted
-- from it (00037's view). Per station aggregates only.
SELECT station_id, region, closed_at, reported_ballots, counted_ballots FROM station_canvass ORDER BY station_id;
