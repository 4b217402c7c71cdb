-- Ballot secrecy enforced by the database, not only by the read API's code.
--
-- votewatch_reader (the read API) could read every table, ballots and the
-- register included: a compromised or buggy read API could have published
-- who voted for whom. From here on it reads only what the API serves:
-- aggregates, the candidates' ids, names and parties, and two views that show rejections and dead letters without
-- the voter, the vote_id or the message, and with their times binned to
-- the minute (a time to the second, next to a station's queue, can tell
-- whose vote was rejected). The views run with their owner's rights, so
-- the reader needs no right on the tables behind them.
--
-- votewatch_projector only ever inserts and updates: it loses DELETE on
-- the tables that hold decisions, counts and registers, and new tables no
-- longer grant it DELETE by default. TRUNCATE it never had.
--
-- votewatch_intake may see that this schema is migrated (its /readyz).
--
-- Like 00004, everything here is per schema: a replay's rebuilt schema runs
-- this too, so the grants hold after the swap.

-- +goose Up
CREATE VIEW rejections_public AS
SELECT reason,
       date_bin('1 minute', cast_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')::timestamptz AS cast_minute,
       date_bin('1 minute', recorded_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')::timestamptz AS recorded_minute
FROM rejections;

CREATE VIEW dead_letters_public AS
SELECT topic, partition, "offset", reason,
       date_bin('1 minute', received_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')::timestamptz AS received_minute
FROM dead_letters;

-- The "latest" lists order by the minute, so the index is on the minute.
DROP INDEX rejections_recorded_at;
DROP INDEX dead_letters_received_at;
CREATE INDEX rejections_recorded_minute ON rejections (date_bin('1 minute', recorded_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') DESC);
CREATE INDEX dead_letters_received_minute ON dead_letters (date_bin('1 minute', received_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') DESC);

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s REVOKE SELECT ON TABLES FROM votewatch_reader', s);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM votewatch_reader', s);
        -- Of the candidates, what the API shows: id, name and party.
        EXECUTE format('GRANT SELECT (candidate_id, name, party) ON %s.candidates TO votewatch_reader', s);
        EXECUTE format('GRANT SELECT ON %1$s.candidate_tallies, %1$s.regions, %1$s.region_tallies, '
                       '%1$s.rejection_tallies, %1$s.timeline, %1$s.demographic_tallies, %1$s.applied_offsets, '
                       '%1$s.projection_meta, %1$s.goose_db_version, %1$s.rejections_public, %1$s.dead_letters_public '
                       'TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s REVOKE DELETE ON TABLES FROM votewatch_projector', s);
        EXECUTE format('REVOKE DELETE, TRUNCATE ON %1$s.ballots, %1$s.rejections, %1$s.candidate_tallies, %1$s.regions, '
                       '%1$s.region_tallies, %1$s.rejection_tallies, %1$s.timeline, %1$s.demographic_tallies, '
                       '%1$s.voters, %1$s.candidates, %1$s.dead_letters, %1$s.applied_offsets, %1$s.projection_meta '
                       'FROM votewatch_projector', s);
        -- The views are simple enough to be updatable, and writes through
        -- them would run with their owner's rights: only SELECT on them
        -- (the projector's /metrics reads the dead-letter count).
        EXECUTE format('REVOKE ALL ON %1$s.rejections_public, %1$s.dead_letters_public, %1$s.goose_db_version FROM votewatch_projector', s);
        EXECUTE format('GRANT SELECT ON %1$s.rejections_public, %1$s.dead_letters_public, %1$s.goose_db_version TO votewatch_projector', s);
    END IF;
    -- The intake, now a process of its own, checks at /readyz that this
    -- schema is migrated too; it reads nothing else here.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_intake') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %s TO votewatch_intake', s);
        EXECUTE format('GRANT SELECT ON %s.goose_db_version TO votewatch_intake', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_intake') THEN
        EXECUTE format('REVOKE ALL ON %s.goose_db_version FROM votewatch_intake', s);
        EXECUTE format('REVOKE USAGE ON SCHEMA %s FROM votewatch_intake', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT DELETE ON TABLES TO votewatch_projector', s);
        EXECUTE format('GRANT DELETE ON ALL TABLES IN SCHEMA %s TO votewatch_projector', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT SELECT ON TABLES TO votewatch_reader', s);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %s TO votewatch_reader', s);
    END IF;
END
$$;
-- +goose StatementEnd
DROP INDEX dead_letters_received_minute;
DROP INDEX rejections_recorded_minute;
CREATE INDEX rejections_recorded_at ON rejections (recorded_at DESC);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at DESC);
DROP VIEW dead_letters_public;
DROP VIEW rejections_public;
