-- Secrecy by design (issue 21 §2): what each login may do is the
-- database's rule, not the code's habit.
--
-- The projector may no longer UPDATE what it decided. Ballots, rejections,
-- held votes, the registers, schedules, dead letters, operator actions and
-- the transparency log (tree_leaves, tree_hashes, checkpoints) it may only
-- INSERT: a decision, once written, is never rewritten by the login that
-- writes them. Tallies it may neither INSERT nor UPDATE: it adds to them
-- through add_tallies and add_tree_counts, which only ever add a positive
-- count (tally_increment), and moves a tree's head forward through
-- advance_tree_head. The few columns it still UPDATEs are named below,
-- each with its reason; a table a later migration adds gives it no UPDATE
-- by default.
--
-- The reader may no longer enumerate vote_ids. ballot_statuses (00013)
-- and tree_leaves (00017) listed every vote_id the projection decided,
-- and tree_leaves its partition and offset: with two snapshots of the
-- per-batch tallies that gave a vote_id's choice. Ballot tracking now asks
-- for one vote_id at a time, through ballot_status and tree_leaf_of.
--
-- Every function here is SECURITY DEFINER (runs with the migrating
-- owner's rights) and written as a SQL-standard body (BEGIN ATOMIC): its
-- tables are bound when it is created, like a view's, so a caller's
-- search_path cannot point it at anything else, and a replay's schema
-- rename carries it along with its tables. Like every grant migration,
-- everything here is per schema, so a replay's rebuilt schema runs it too.

-- +goose Up
-- A count added to a tally: never zero, negative or missing.
CREATE DOMAIN tally_increment AS bigint NOT NULL CHECK (VALUE > 0);

-- Adds one batch's counts to the tallies, in the caller's stripe (00019),
-- each table in key order so that two writers sharing a stripe lock rows
-- in the same order. The arrays are WriteDirectTallies': the counted
-- ballots grouped by region, candidate, contest and minute (rolled up here
-- into the candidate, region, turnout and timeline tallies), the
-- breakdowns, the rejections per contest and reason, and the decided
-- votes per station and outcome. Repeated keys are summed.
-- +goose StatementBegin
CREATE FUNCTION add_tallies(
    stripe smallint,
    regions text[], candidate_ids text[], contest_ids text[], minutes timestamptz[], counts bigint[],
    dimensions text[], buckets text[], demographic_candidate_ids text[], demographic_counts bigint[],
    rejection_contest_ids text[], reasons text[], rejection_counts bigint[],
    station_ids text[], outcomes text[], station_counts bigint[]
) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO candidate_tallies AS t (candidate_id, stripe, votes)
    SELECT k.candidate_id, add_tallies.stripe, sum(k.n::tally_increment)
    FROM unnest(add_tallies.candidate_ids, add_tallies.counts) AS k(candidate_id, n)
    GROUP BY k.candidate_id ORDER BY k.candidate_id
    ON CONFLICT (candidate_id, stripe) DO UPDATE SET votes = t.votes + excluded.votes;

    INSERT INTO region_tallies AS t (region, candidate_id, stripe, votes)
    SELECT k.region, k.candidate_id, add_tallies.stripe, sum(k.n::tally_increment)
    FROM unnest(add_tallies.regions, add_tallies.candidate_ids, add_tallies.counts) AS k(region, candidate_id, n)
    GROUP BY k.region, k.candidate_id ORDER BY k.region, k.candidate_id
    ON CONFLICT (region, candidate_id, stripe) DO UPDATE SET votes = t.votes + excluded.votes;

    INSERT INTO contest_turnout AS t (contest_id, region, stripe, votes_cast)
    SELECT k.contest_id, k.region, add_tallies.stripe, sum(k.n::tally_increment)
    FROM unnest(add_tallies.contest_ids, add_tallies.regions, add_tallies.counts) AS k(contest_id, region, n)
    GROUP BY k.contest_id, k.region ORDER BY k.contest_id, k.region
    ON CONFLICT (contest_id, region, stripe) DO UPDATE SET votes_cast = t.votes_cast + excluded.votes_cast;

    INSERT INTO timeline AS t (minute, candidate_id, stripe, votes)
    SELECT date_trunc('minute', k.minute), k.candidate_id, add_tallies.stripe, sum(k.n::tally_increment)
    FROM unnest(add_tallies.minutes, add_tallies.candidate_ids, add_tallies.counts) AS k(minute, candidate_id, n)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (minute, candidate_id, stripe) DO UPDATE SET votes = t.votes + excluded.votes;

    INSERT INTO demographic_tallies AS t (dimension, bucket, candidate_id, stripe, votes)
    SELECT k.dimension, k.bucket, k.candidate_id, add_tallies.stripe, sum(k.n::tally_increment)
    FROM unnest(add_tallies.dimensions, add_tallies.buckets, add_tallies.demographic_candidate_ids,
                add_tallies.demographic_counts) AS k(dimension, bucket, candidate_id, n)
    GROUP BY k.dimension, k.bucket, k.candidate_id ORDER BY k.dimension, k.bucket, k.candidate_id
    ON CONFLICT (dimension, bucket, candidate_id, stripe) DO UPDATE SET votes = t.votes + excluded.votes;

    INSERT INTO rejection_tallies AS t (contest_id, reason, stripe, count)
    SELECT k.contest_id, k.reason, add_tallies.stripe, sum(k.n::tally_increment)
    FROM unnest(add_tallies.rejection_contest_ids, add_tallies.reasons, add_tallies.rejection_counts) AS k(contest_id, reason, n)
    GROUP BY k.contest_id, k.reason ORDER BY k.contest_id, k.reason
    ON CONFLICT (contest_id, reason, stripe) DO UPDATE SET count = t.count + excluded.count;

    INSERT INTO station_tallies AS t (station_id, outcome, stripe, votes)
    SELECT k.station_id, k.outcome, add_tallies.stripe, sum(k.n::tally_increment)
    FROM unnest(add_tallies.station_ids, add_tallies.outcomes, add_tallies.station_counts) AS k(station_id, outcome, n)
    GROUP BY k.station_id, k.outcome ORDER BY k.station_id, k.outcome
    ON CONFLICT (station_id, outcome, stripe) DO UPDATE SET votes = t.votes + excluded.votes;
END;
-- +goose StatementEnd

-- Adds the decisions of the transparency log's new leaves to tree_counts.
-- +goose StatementBegin
CREATE FUNCTION add_tree_counts(kinds text[], contests text[], regions text[], choices text[], ns bigint[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO tree_counts AS t (kind, contest, region, choice, n)
    SELECT k.kind, k.contest, k.region, k.choice, sum(k.n::tally_increment)
    FROM unnest(add_tree_counts.kinds, add_tree_counts.contests, add_tree_counts.regions, add_tree_counts.choices,
                add_tree_counts.ns) AS k(kind, contest, region, choice, n)
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (kind, contest, region, choice) DO UPDATE SET n = t.n + excluded.n;
END;
-- +goose StatementEnd

-- Moves a partition's tree head to a tree at least as large: a head never
-- shrinks (an older head offered late changes nothing).
-- +goose StatementBegin
CREATE FUNCTION advance_tree_head(tree integer, size bigint, root bytea, next_offset bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO tree_heads AS h (partition, size, root, next_offset, updated_at)
    VALUES (advance_tree_head.tree, advance_tree_head.size, advance_tree_head.root, advance_tree_head.next_offset, now())
    ON CONFLICT (partition) DO UPDATE
    SET size = excluded.size, root = excluded.root, next_offset = excluded.next_offset, updated_at = excluded.updated_at
    WHERE h.size <= excluded.size;
END;
-- +goose StatementEnd

-- What became of one vote, for its receipt holder: ballot_statuses' row
-- for that vote_id and no other.
-- +goose StatementBegin
CREATE FUNCTION ballot_status(receipt uuid) RETURNS TABLE (status text, reason text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT s.status, s.reason FROM ballot_statuses s WHERE s.vote_id = ballot_status.receipt LIMIT 1;
END;
-- +goose StatementEnd

-- The transparency log's leaves for one vote_id (a vote_id sent twice has
-- two), for its inclusion proof.
-- +goose StatementBegin
CREATE FUNCTION tree_leaf_of(receipt uuid) RETURNS TABLE (partition integer, leaf bigint, "offset" bigint, body text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT l.partition, l.leaf, l."offset", l.body FROM tree_leaves l
    WHERE l.vote_id = tree_leaf_of.receipt ORDER BY l.partition, l.leaf;
END;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
    add_tallies text := format('%s.add_tallies(smallint, text[], text[], text[], timestamptz[], bigint[], text[], text[], text[], '
                               'bigint[], text[], text[], bigint[], text[], text[], bigint[])', s);
    add_tree_counts text := format('%s.add_tree_counts(text[], text[], text[], text[], bigint[])', s);
    advance_tree_head text := format('%s.advance_tree_head(integer, bigint, bytea, bigint)', s);
    readers text := format('%1$s.ballot_status(uuid), %1$s.tree_leaf_of(uuid)', s);
BEGIN
    -- Functions are executable by PUBLIC by default: by nobody here.
    EXECUTE format('REVOKE ALL ON FUNCTION %s, %s, %s, %s FROM PUBLIC', add_tallies, add_tree_counts, advance_tree_head, readers);
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s REVOKE UPDATE ON TABLES FROM votewatch_projector', s);
        EXECUTE format('REVOKE UPDATE ON ALL TABLES IN SCHEMA %s FROM votewatch_projector', s);
        -- Tallies and tree heads change through the functions only.
        EXECUTE format('REVOKE INSERT ON %1$s.candidate_tallies, %1$s.region_tallies, %1$s.rejection_tallies, %1$s.timeline, '
                       '%1$s.demographic_tallies, %1$s.station_tallies, %1$s.contest_turnout, %1$s.tree_counts, '
                       '%1$s.tree_heads FROM votewatch_projector', s);
        EXECUTE format('REVOKE INSERT ON %1$s.projection_meta FROM votewatch_projector', s);
        -- Progress, not a decision: a partition's next offset only moves
        -- forward (AdvanceOffsets).
        EXECUTE format('GRANT UPDATE (next_offset, updated_at, last_event_at, batches) ON %s.applied_offsets TO votewatch_projector', s);
        -- A registration amended: a candidate's profile, never its contest
        -- (which votes count for it).
        EXECUTE format('GRANT UPDATE (name, party, biography, platform, photo_url) ON %s.candidates TO votewatch_projector', s);
        -- The register's size per region, counted as voters register.
        EXECUTE format('GRANT UPDATE (registered_voters) ON %s.regions TO votewatch_projector', s);
        -- A station's close report.
        EXECUTE format('GRANT UPDATE (closed_at) ON %s.stations TO votewatch_projector', s);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s, %s, %s TO votewatch_projector', add_tallies, add_tree_counts, advance_tree_head);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('REVOKE ALL ON %1$s.ballot_statuses, %1$s.tree_leaves FROM votewatch_reader', s);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO votewatch_reader', readers);
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
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$s.ballot_statuses, %1$s.tree_leaves TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT UPDATE ON TABLES TO votewatch_projector', s);
        EXECUTE format('GRANT INSERT, UPDATE ON %1$s.candidate_tallies, %1$s.region_tallies, %1$s.rejection_tallies, %1$s.timeline, '
                       '%1$s.demographic_tallies, %1$s.station_tallies, %1$s.contest_turnout, %1$s.tree_counts, '
                       '%1$s.tree_heads TO votewatch_projector', s);
        EXECUTE format('GRANT INSERT, UPDATE ON %1$s.projection_meta TO votewatch_projector', s);
        EXECUTE format('GRANT UPDATE ON %1$s.ballots, %1$s.rejections, %1$s.held_votes, %1$s.voters, %1$s.candidates, '
                       '%1$s.contests, %1$s.regions, %1$s.stations, %1$s.applied_offsets, %1$s.dead_letters, '
                       '%1$s.refused_registrations, %1$s.registration_closures, %1$s.vote_schedules, '
                       '%1$s.tree_hashes, %1$s.tree_leaves TO votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd
DROP FUNCTION tree_leaf_of(uuid);
DROP FUNCTION ballot_status(uuid);
DROP FUNCTION advance_tree_head(integer, bigint, bytea, bigint);
DROP FUNCTION add_tree_counts(text[], text[], text[], text[], bigint[]);
DROP FUNCTION add_tallies(smallint, text[], text[], text[], timestamptz[], bigint[], text[], text[], text[], bigint[],
                          text[], text[], bigint[], text[], text[], bigint[]);
DROP DOMAIN tally_increment;
