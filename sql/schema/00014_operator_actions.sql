-- Operator actions (the audit topic), served at GET /api/v1/audit.

-- +goose Up
CREATE TABLE operator_actions (
    partition integer NOT NULL,
    "offset"  bigint NOT NULL,
    action    text NOT NULL,
    who       text NOT NULL,
    host      text NOT NULL,
    at        timestamptz NOT NULL,
    detail    text NOT NULL,
    result    text NOT NULL,
    PRIMARY KEY (partition, "offset")
);

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$s.operator_actions TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %1$s.operator_actions FROM votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE operator_actions;
