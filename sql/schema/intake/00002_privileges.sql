-- The intake's share of least privilege (roles: see the projection's
-- 00004_privileges.sql, which creates them): votewatch_intake writes
-- accepted votes and drains the outbox; votewatch_reader may only see which
-- intake migrations ran (the readiness check), and so may
-- votewatch_projector (it checks the migrations at start).

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_intake') THEN
        GRANT USAGE ON SCHEMA intake TO votewatch_intake;
        GRANT SELECT, INSERT, DELETE ON intake.votes, intake.outbox TO votewatch_intake;
        GRANT UPDATE ON intake.outbox TO votewatch_intake;
        GRANT USAGE, SELECT ON SEQUENCE intake.outbox_offset_seq TO votewatch_intake;
        GRANT SELECT ON intake.goose_db_version TO votewatch_intake;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        GRANT USAGE ON SCHEMA intake TO votewatch_reader;
        GRANT SELECT ON intake.goose_db_version TO votewatch_reader;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        GRANT USAGE ON SCHEMA intake TO votewatch_projector;
        GRANT SELECT ON intake.goose_db_version TO votewatch_projector;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
SELECT 1;
