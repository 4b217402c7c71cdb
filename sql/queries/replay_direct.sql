-- The replay's load of the votes, for a fresh projection (issue 22 §3):
-- domain.Decide decides every vote in Go on a domain.Ledger holding the
-- register in memory, and the ballots, rejections and held votes are
-- COPYed straight into their tables; the tallies, grouped in Go, are
-- written once at the end by AddTallies (tallies.sql), as live writes a
-- batch's.

-- name: ListRegisterVoters :many
-- The whole register, for the replay's ledger (registrations are replayed
-- before the votes).
SELECT voter_id, region, gender, birth_date FROM voters;

-- name: ListRegisterCandidates :many
SELECT candidate_id, contest_id FROM candidates;

-- name: ListRegisterContests :many
SELECT contest_id, name, kind, regions FROM contests;

-- name: CopyBallots :copyfrom
-- sqlc's CopyFrom names the table unqualified: the rows land in the
-- session's search_path, the schema being rebuilt.
INSERT INTO ballots (voter_id, vote_id, region, cast_at, station_id, contest_id)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: CopyRejections :copyfrom
INSERT INTO rejections (vote_id, reason, voter_id, cast_at, station_id, contest_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: CopyHeldVotes :copyfrom
-- A held vote keeps its message as the log holds it (00040), not its
-- choice.
INSERT INTO held_votes (vote_id, voter_id, message, cast_at, partition, "offset", station_id, station_region, contest_id, logged_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);

-- name: CopyMisroutedVotes :copyfrom
INSERT INTO misrouted_votes (partition, "offset") VALUES ($1, $2);
