-- The releaser runs in the projector, as votewatch_projector. 00025 took
-- UPDATE from that login by default, so the released figures (00028) need
-- it granted back, and on their counts only: released_cells and
-- released_steps move to the exact counts step by step (never a decision
-- or a vote), and release_state records each step. The login still may
-- not DELETE or TRUNCATE them, so nothing released can be taken back.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('GRANT SELECT, INSERT ON %1$s.released_cells, %1$s.released_steps, %1$s.release_state TO votewatch_projector', s);
        EXECUTE format('GRANT UPDATE (votes) ON %1$s.released_cells, %1$s.released_steps TO votewatch_projector', s);
        EXECUTE format('GRANT UPDATE (releases, released_at, polls_closed, min_cell) ON %1$s.release_state TO votewatch_projector', s);
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
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE UPDATE ON %1$s.released_cells, %1$s.released_steps, %1$s.release_state FROM votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd
