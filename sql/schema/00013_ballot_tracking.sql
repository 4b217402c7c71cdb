-- Ballot tracking (README, "Tracking a ballot"): a voter holding a receipt
-- (the vote_id) may learn what became of the vote, and nothing else. The
-- reader may not read ballots, rejections or held votes; this function,
-- which runs with its owner's rights, answers one vote_id at a time with
-- the status and, for a rejection, the reason: never the candidate, the
-- voter or the region.

-- +goose Up
ALTER TABLE ballots ADD COLUMN decided_at timestamptz NOT NULL DEFAULT now();

-- +goose StatementBegin
CREATE FUNCTION ballot_status(receipt uuid)
RETURNS TABLE (status text, reason text, decided_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
-- The tables are named through current_schema() (the caller's projection
-- schema: every votewatch pool sets it), never by an unqualified name: a
-- replay builds this schema under another name and renames it, so no fixed
-- search_path can name it, and an unqualified table name would be looked
-- up in the caller's pg_temp first, where the caller could shadow it.
-- Functions are never looked up in pg_temp.
AS $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    RETURN QUERY EXECUTE format('SELECT ''counted''::text, NULL::text, b.decided_at FROM %s.ballots b WHERE b.vote_id = $1 LIMIT 1', s)
        USING receipt;
    IF FOUND THEN RETURN; END IF;
    RETURN QUERY EXECUTE format('SELECT ''rejected''::text, r.reason, r.recorded_at FROM %s.rejections r WHERE r.vote_id = $1', s)
        USING receipt;
    IF FOUND THEN RETURN; END IF;
    RETURN QUERY EXECUTE format('SELECT ''pending''::text, NULL::text, NULL::timestamptz FROM %s.held_votes h WHERE h.vote_id = $1', s)
        USING receipt;
    IF FOUND THEN RETURN; END IF;
    -- Accepted by the intake, not yet in the projection: pending too. The
    -- intake's schema may not exist (no intake deployed).
    IF to_regclass('intake.votes') IS NOT NULL THEN
        RETURN QUERY EXECUTE 'SELECT ''pending''::text, NULL::text, NULL::timestamptz FROM intake.votes WHERE vote_id = $1'
            USING receipt;
    END IF;
END
$$;
-- +goose StatementEnd

CREATE INDEX ballots_vote_id ON ballots (vote_id);

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s.ballot_status(uuid) FROM PUBLIC', s);
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s.ballot_status(uuid) TO votewatch_reader', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX ballots_vote_id;
DROP FUNCTION ballot_status(uuid);
ALTER TABLE ballots DROP COLUMN decided_at;
