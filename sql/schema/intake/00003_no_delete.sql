-- An accepted vote's record is permanent: the intake may add to
-- intake.votes but never remove from it, so a compromised intake API cannot
-- erase the trace of a vote a station was told was accepted (and that
-- `verify` checks reached the log). The outbox keeps its DELETE: the relay
-- removes each row once Kafka has it.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_intake') THEN
        REVOKE DELETE, TRUNCATE, UPDATE ON intake.votes FROM votewatch_intake;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_intake') THEN
        GRANT DELETE ON intake.votes TO votewatch_intake;
    END IF;
END
$$;
-- +goose StatementEnd
