-- Privileges for the decision rule's tables (00007–00009), in the terms of
-- 00005: the reader sees counts, never a held vote; the projector may take
-- a held vote out of held_votes (to decide it), and delete nothing else.

-- +goose Up
-- Registration at a glance, for status and metrics: counts only.
CREATE VIEW registration_state AS
SELECT (SELECT count(*) FROM held_votes)::bigint            AS held_votes,
       (SELECT count(*) FROM refused_registrations)::bigint AS refused_registrations,
       (SELECT count(*) FROM registration_closures)::bigint AS closed_partitions;

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('REVOKE ALL ON %1$s.held_votes, %1$s.staged_votes FROM votewatch_reader', s);
        EXECUTE format('GRANT SELECT ON %1$s.registration_state, %1$s.registration_closures, %1$s.refused_registrations, '
                       '%1$s.vote_schedules, %1$s.station_tallies TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE DELETE, TRUNCATE ON %1$s.registration_closures, %1$s.refused_registrations, '
                       '%1$s.vote_schedules, %1$s.station_tallies FROM votewatch_projector', s);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %1$s.held_votes TO votewatch_projector', s);
        EXECUTE format('REVOKE ALL ON %1$s.registration_state FROM votewatch_projector', s);
        EXECUTE format('GRANT SELECT ON %1$s.registration_state TO votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW registration_state;
