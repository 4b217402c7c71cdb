-- One decider (issue 22): which vote counts is decided once, in Go
-- (domain.Decide), for live, catch-up and replay; the database stores the
-- decisions and never makes them. vote_verdict (00016), the rule's second
-- copy in SQL, goes, and so does the replay's staged path and its scratch
-- table: a replay decides with the same decider, its facts in memory.
--
-- misrouted_votes keeps the positions of the votes found on another
-- partition of the votes topic than murmur2 of their voter_id names (rule
-- 0, domain/rule.go): refused like a registration after its close marker,
-- by position, so that the vote_id stays free for the same vote on the
-- right partition. Positions only: nothing here names a voter or a choice.

-- +goose Up
DROP FUNCTION vote_verdict(boolean, text, text, text, text[], text, boolean);
DROP TABLE staged_votes;
-- The reasons are domain.RejectionReasons: a new one is an edit in domain,
-- not a migration.
ALTER TABLE rejections DROP CONSTRAINT rejections_reason_check;

CREATE TABLE misrouted_votes (
    partition integer NOT NULL,
    "offset"  bigint NOT NULL,
    PRIMARY KEY (partition, "offset")
);

-- +goose StatementBegin
DO $$
BEGIN
    -- Like refused_registrations (00010): positions only, which the
    -- reader may read; the projector reads and adds.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %I.misrouted_votes TO votewatch_reader', current_schema());
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('GRANT SELECT, INSERT ON %I.misrouted_votes TO votewatch_projector', current_schema());
        EXECUTE format('REVOKE DELETE, TRUNCATE ON %I.misrouted_votes FROM votewatch_projector', current_schema());
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE misrouted_votes;
ALTER TABLE rejections ADD CONSTRAINT rejections_reason_check
    CHECK (reason IN ('duplicate_voter', 'unknown_voter', 'unknown_candidate', 'outside_polls', 'implausible_time',
                      'wrong_station', 'unknown_contest', 'not_eligible'));

CREATE UNLOGGED TABLE staged_votes (
    partition      integer NOT NULL,
    "offset"       bigint NOT NULL,
    vote_id        uuid NOT NULL,
    voter_id       text NOT NULL,
    candidate_id   text NOT NULL,
    cast_at        timestamptz NOT NULL,
    time_reason    text,
    station_id     text,
    station_region text,
    contest_id     text NOT NULL DEFAULT 'default',
    logged_at      timestamptz
);

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
