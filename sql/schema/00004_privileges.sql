-- Least privilege. Three group roles, which deployments grant to their
-- login roles (README, "Database roles"):
--   votewatch_reader     the read API: SELECT on the projection, nothing else
--   votewatch_projector  the projector: reads and writes rows, cannot create,
--                        alter or drop anything (it owns nothing)
--   votewatch_intake     the intake API (see the intake migrations)
-- Roles are cluster-wide and creating them needs CREATEROLE; where the
-- migrating role lacks it (a managed database), an administrator creates
-- them once and this migration only grants. Grants are per schema, so a
-- replay's rebuilt schema gets them too, and they move with it on the swap.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['votewatch_reader', 'votewatch_projector', 'votewatch_intake'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role %: create it as an administrator, then migrate again', r;
            END;
        END IF;
    END LOOP;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO votewatch_reader', current_schema());
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO votewatch_reader', current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO votewatch_reader', current_schema());
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO votewatch_projector', current_schema());
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO votewatch_projector', current_schema());
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO votewatch_projector', current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO votewatch_projector', current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO votewatch_projector', current_schema());
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['votewatch_reader', 'votewatch_projector'] LOOP
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', current_schema(), r);
            EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', current_schema(), r);
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd
