-- Ballot tracking (README, "Tracking a ballot"): a voter holding a receipt
-- (the vote_id) may learn what became of the vote, and nothing else. The
-- reader may not read ballots, rejections or held votes; this view, which
-- reads them with its owner's rights, gives one row per decided or held
-- vote: the vote_id, the status and a rejection's reason. Never the
-- candidate, the voter, the region or the contest, and no time (a time
-- beside the public per-minute tallies could betray a choice).
--
-- A view, not a function: it binds its tables when created (a replay's
-- rename carries it along) and takes no name from the caller's search
-- path, so a caller cannot make it read anything else.

-- +goose Up
CREATE VIEW ballot_statuses AS
SELECT b.vote_id, 'counted'::text AS status, NULL::text AS reason FROM ballots b
UNION ALL
SELECT r.vote_id, 'rejected', r.reason FROM rejections r
UNION ALL
SELECT h.vote_id, 'pending', NULL FROM held_votes h;

CREATE INDEX ballots_vote_id ON ballots (vote_id);

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %s.ballot_statuses TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE ALL ON %s.ballot_statuses FROM votewatch_projector', s);
    END IF;
    -- Nobody needs temporary objects here; without them no caller can
    -- shadow a table in pg_temp. Only the database's owner may revoke.
    BEGIN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot revoke TEMPORARY on the database from PUBLIC: do it as its owner';
    END;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX ballots_vote_id;
DROP VIEW ballot_statuses;
