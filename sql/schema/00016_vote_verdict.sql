-- The decision rule's verdict on one vote, written once (issue 15 §2):
-- the live statements (votes.sql), the release of held votes
-- (registration.sql) and the replay's bulk statements (replay.sql) all ask
-- it, so they cannot drift apart. domain.Count is the specification; the
-- order of the checks is domain.Decide's.
--
-- It takes what the register says about the vote (NULL where the voter,
-- the contest or the candidate is not registered) and returns 'held' (rule
-- 4: registration is open and something the vote names is not registered
-- yet), 'counted', or the rejection reason. Whether an earlier vote of the
-- voter blocks this one (rule 4), whether the voter already has a ballot
-- (has_counted) and the time rule (rule 5, decided in Go) are the caller's:
-- they depend on the batch, not on the vote.
--
-- A pure function of its arguments, reading no table: executing it tells
-- the caller nothing the caller did not pass in, so the read API's role
-- still cannot learn who voted for whom (00005). One SQL expression,
-- IMMUTABLE, so the planner inlines it like age_band: no call per row.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION vote_verdict(
    registration_closed boolean,
    contest_id text,
    voter_region text,
    station_region text,
    contest_regions text[],
    candidate_contest text,
    has_counted boolean
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN NOT registration_closed
             AND (voter_region IS NULL OR candidate_contest IS NULL
                  OR (contest_id <> 'default' AND contest_regions IS NULL)) THEN 'held'
        WHEN voter_region IS NULL THEN 'unknown_voter'
        WHEN station_region IS NOT NULL AND station_region <> voter_region THEN 'wrong_station'
        WHEN contest_id <> 'default' AND contest_regions IS NULL THEN 'unknown_contest'
        WHEN contest_id <> 'default' AND cardinality(contest_regions) > 0
             AND NOT voter_region = ANY(contest_regions) THEN 'not_eligible'
        WHEN candidate_contest IS NULL OR candidate_contest <> contest_id THEN 'unknown_candidate'
        WHEN has_counted THEN 'duplicate_voter'
        ELSE 'counted'
    END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    -- Only the projector decides votes.
    EXECUTE format('REVOKE ALL ON FUNCTION %s.vote_verdict(boolean, text, text, text, text[], text, boolean) FROM PUBLIC', s);
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s.vote_verdict(boolean, text, text, text, text[], text, boolean) TO votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION vote_verdict(boolean, text, text, text, text[], text, boolean);
