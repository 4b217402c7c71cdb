-- No hot rows (issue 13 §2). Every vote batch used to add to the same few
-- tally rows (five candidate rows per contest, a region's turnout, a
-- partition's applied offset), so concurrent batches waited on each
-- other's row locks and more writers were slower. Each of those tables now
-- keeps its counts in stripes: a transaction adds only to its own stripe
-- (the Store leases one per transaction, so no two concurrent transactions
-- of a process share one), and every read sums the stripes, through the
-- *_summed views below (and applied_offsets_merged). A stripe row exists
-- only once a transaction used that stripe, so the rows to sum grow with the
-- writers that actually ran at once, not with the pool.
--
-- Writers that do not name a stripe (the replay's folds of a fresh schema,
-- tests) write stripe 0, which is as correct as any: two transactions that
-- share a stripe only wait for each other.
--
-- regions.votes_cast was the default contest's turnout per region, one
-- row per region that every batch updated; contest_turnout has the same
-- count per contest, so the live path no longer writes regions.votes_cast
-- and regions_summed derives it from contest_turnout ('default'), as
-- contract v1 reads it.

-- +goose Up
ALTER TABLE candidate_tallies ADD COLUMN stripe smallint NOT NULL DEFAULT 0 CHECK (stripe >= 0);
ALTER TABLE candidate_tallies DROP CONSTRAINT candidate_tallies_pkey, ADD PRIMARY KEY (candidate_id, stripe);
ALTER TABLE region_tallies ADD COLUMN stripe smallint NOT NULL DEFAULT 0 CHECK (stripe >= 0);
ALTER TABLE region_tallies DROP CONSTRAINT region_tallies_pkey, ADD PRIMARY KEY (region, candidate_id, stripe);
ALTER TABLE rejection_tallies ADD COLUMN stripe smallint NOT NULL DEFAULT 0 CHECK (stripe >= 0);
ALTER TABLE rejection_tallies DROP CONSTRAINT rejection_tallies_pkey, ADD PRIMARY KEY (contest_id, reason, stripe);
ALTER TABLE timeline ADD COLUMN stripe smallint NOT NULL DEFAULT 0 CHECK (stripe >= 0);
ALTER TABLE timeline DROP CONSTRAINT timeline_pkey, ADD PRIMARY KEY (minute, candidate_id, stripe);
ALTER TABLE demographic_tallies ADD COLUMN stripe smallint NOT NULL DEFAULT 0 CHECK (stripe >= 0);
ALTER TABLE demographic_tallies DROP CONSTRAINT demographic_tallies_pkey, ADD PRIMARY KEY (dimension, bucket, candidate_id, stripe);
ALTER TABLE station_tallies ADD COLUMN stripe smallint NOT NULL DEFAULT 0 CHECK (stripe >= 0);
ALTER TABLE station_tallies DROP CONSTRAINT station_tallies_pkey, ADD PRIMARY KEY (station_id, outcome, stripe);
ALTER TABLE contest_turnout ADD COLUMN stripe smallint NOT NULL DEFAULT 0 CHECK (stripe >= 0);
ALTER TABLE contest_turnout DROP CONSTRAINT contest_turnout_pkey, ADD PRIMARY KEY (contest_id, region, stripe);
ALTER TABLE applied_offsets ADD COLUMN stripe smallint NOT NULL DEFAULT 0 CHECK (stripe >= 0);
ALTER TABLE applied_offsets DROP CONSTRAINT applied_offsets_pkey, ADD PRIMARY KEY (topic, partition, stripe);

COMMENT ON COLUMN regions.votes_cast IS 'Not maintained by the live path since 00019: read regions_summed.votes_cast.';

CREATE VIEW candidate_tallies_summed AS
SELECT candidate_id, sum(votes)::bigint AS votes FROM candidate_tallies GROUP BY candidate_id;

CREATE VIEW region_tallies_summed AS
SELECT region, candidate_id, sum(votes)::bigint AS votes FROM region_tallies GROUP BY region, candidate_id;

CREATE VIEW rejection_tallies_summed AS
SELECT contest_id, reason, sum(count)::bigint AS count FROM rejection_tallies GROUP BY contest_id, reason;

CREATE VIEW timeline_summed AS
SELECT minute, candidate_id, sum(votes)::bigint AS votes FROM timeline GROUP BY minute, candidate_id;

CREATE VIEW demographic_tallies_summed AS
SELECT dimension, bucket, candidate_id, sum(votes)::bigint AS votes FROM demographic_tallies GROUP BY dimension, bucket, candidate_id;

CREATE VIEW station_tallies_summed AS
SELECT station_id, outcome, sum(votes)::bigint AS votes FROM station_tallies GROUP BY station_id, outcome;

CREATE VIEW contest_turnout_summed AS
SELECT contest_id, region, sum(votes_cast)::bigint AS votes_cast FROM contest_turnout GROUP BY contest_id, region;

CREATE VIEW regions_summed AS
SELECT g.region, g.registered_voters, coalesce(t.votes_cast, 0)::bigint AS votes_cast
FROM regions g
LEFT JOIN (SELECT region, sum(votes_cast) AS votes_cast FROM contest_turnout WHERE contest_id = 'default' GROUP BY region) t
  ON t.region = g.region;

-- A partition's next offset is the highest any stripe reached (each only
-- moves forward), its batches the sum: every committed batch adds one to
-- some stripe, so the watermark still moves on every batch. last_event_at
-- stays without a cast: it may be NULL, and sqlc types a cast as never NULL.
CREATE VIEW applied_offsets_merged AS
SELECT topic, partition, max(next_offset)::bigint AS next_offset, max(updated_at)::timestamptz AS updated_at,
       max(last_event_at) AS last_event_at, sum(batches)::bigint AS batches
FROM applied_offsets GROUP BY topic, partition;

-- The reader reads the sums as it read the tables (the tables' new stripe
-- column is covered by its table-wide SELECT); the projector only reads
-- them (none of these views is updatable, but in the terms of 00005 it is
-- granted only what it uses).
-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
    v text := format('%1$s.candidate_tallies_summed, %1$s.region_tallies_summed, %1$s.rejection_tallies_summed, '
                     '%1$s.timeline_summed, %1$s.demographic_tallies_summed, %1$s.station_tallies_summed, '
                     '%1$s.contest_turnout_summed, %1$s.regions_summed, %1$s.applied_offsets_merged', s);
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %s TO votewatch_reader', v);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE ALL ON %s FROM votewatch_projector', v);
        EXECUTE format('GRANT SELECT ON %s TO votewatch_projector', v);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP VIEW applied_offsets_merged;
DROP VIEW regions_summed;
DROP VIEW contest_turnout_summed;
DROP VIEW station_tallies_summed;
DROP VIEW demographic_tallies_summed;
DROP VIEW timeline_summed;
DROP VIEW rejection_tallies_summed;
DROP VIEW region_tallies_summed;
DROP VIEW candidate_tallies_summed;

UPDATE regions g SET votes_cast = coalesce((SELECT sum(t.votes_cast) FROM contest_turnout t
                                            WHERE t.contest_id = 'default' AND t.region = g.region), 0);
COMMENT ON COLUMN regions.votes_cast IS NULL;

-- Each table's stripes fold into stripe 0 before the column goes.
-- +goose StatementBegin
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('candidate_tallies', 'candidate_id', 'sum(votes) AS votes', 'votes'),
        ('region_tallies', 'region, candidate_id', 'sum(votes) AS votes', 'votes'),
        ('rejection_tallies', 'contest_id, reason', 'sum(count) AS count', 'count'),
        ('timeline', 'minute, candidate_id', 'sum(votes) AS votes', 'votes'),
        ('demographic_tallies', 'dimension, bucket, candidate_id', 'sum(votes) AS votes', 'votes'),
        ('station_tallies', 'station_id, outcome', 'sum(votes) AS votes', 'votes'),
        ('contest_turnout', 'contest_id, region', 'sum(votes_cast) AS votes_cast', 'votes_cast'),
        ('applied_offsets', 'topic, partition',
         'max(next_offset) AS next_offset, max(updated_at) AS updated_at, max(last_event_at) AS last_event_at, sum(batches) AS batches',
         'next_offset, updated_at, last_event_at, batches')
    ) AS x(tbl, keys, aggs, cols) LOOP
        EXECUTE format('CREATE TEMP TABLE folded ON COMMIT DROP AS SELECT %s, %s FROM %I GROUP BY %s', t.keys, t.aggs, t.tbl, t.keys);
        EXECUTE format('DELETE FROM %I', t.tbl);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I, DROP COLUMN stripe', t.tbl, t.tbl || '_pkey');
        EXECUTE format('INSERT INTO %I (%s, %s) SELECT %s, %s FROM folded', t.tbl, t.keys, t.cols, t.keys, t.cols);
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (%s)', t.tbl, t.keys);
        DROP TABLE folded;
    END LOOP;
END
$$;
-- +goose StatementEnd
