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
-- No fixed search_path: a replay builds this schema under another name and
-- renames it, so the function resolves its tables through the caller's
-- search_path, which every votewatch pool sets to the projection's
-- schema. The reader can create nothing anywhere to shadow them.
AS $$
BEGIN
    RETURN QUERY SELECT 'counted'::text, NULL::text, b.decided_at FROM ballots b WHERE b.vote_id = receipt LIMIT 1;
    IF FOUND THEN RETURN; END IF;
    RETURN QUERY SELECT 'rejected'::text, r.reason, r.recorded_at FROM rejections r WHERE r.vote_id = receipt;
    IF FOUND THEN RETURN; END IF;
    RETURN QUERY SELECT 'pending'::text, NULL::text, NULL::timestamptz FROM held_votes h WHERE h.vote_id = receipt;
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
