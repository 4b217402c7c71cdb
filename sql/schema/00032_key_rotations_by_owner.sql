-- A rotation of the checkpoint signing key is an operator's decision
-- (`votewatch keys rotate`, run with the owner's login): the checkpointer
-- refuses any other key than the latest checkpoint's unless a rotation
-- names it. 00031 gave the projector INSERT on log_key_rotations, so the
-- projector's login could authorize a key of its choosing and sign a
-- second history under it. It keeps SELECT: the checkpointer reads the
-- latest rotation.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE INSERT ON %1$s.log_key_rotations FROM votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('GRANT INSERT ON %1$s.log_key_rotations TO votewatch_projector', quote_ident(current_schema()));
    END IF;
END
$$;
-- +goose StatementEnd
