-- The transparency log becomes one RFC 6962 tree per election (issue 23,
-- README "Auditing an election"), grown in epochs, served as C2SP
-- tlog-tiles and cosigned by witnesses. Every table here is append-only:
-- the projector needs INSERT and SELECT, never UPDATE or DELETE. The head
-- of the tree is its newest epoch; the counts are summed over epochs.

-- +goose Up
-- The per-partition trees' helper functions, where a secrecy migration
-- made them (they would hold the old tables).
DROP FUNCTION IF EXISTS add_tree_counts(text[], text[], text[], text[], bigint[]);
DROP FUNCTION IF EXISTS advance_tree_head(integer, bigint, bytea, bigint);
DROP FUNCTION IF EXISTS tree_leaf_of(uuid);
DROP TABLE tree_heads, tree_hashes, tree_leaves, tree_counts, checkpoints;

-- One row per growth of the tree: from from_size leaves to size leaves
-- with root, each partition listed contributing its messages up to, not
-- including, its next offset. The same epochs are recorded in the
-- checkpoints topic, so a replay grows the same tree.
CREATE TABLE log_epochs (
    size         bigint PRIMARY KEY CHECK (size > 0),
    from_size    bigint NOT NULL UNIQUE CHECK (from_size >= 0 AND from_size < size),
    root         bytea NOT NULL CHECK (length(root) = 32),
    partitions   integer[] NOT NULL,
    next_offsets bigint[] NOT NULL CHECK (cardinality(next_offsets) = cardinality(partitions)),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Every stored hash of the tree, at its sumdb/tlog StoredHashIndex: the
-- hash tiles are read from here.
CREATE TABLE log_hashes (
    idx  bigint PRIMARY KEY,
    hash bytea NOT NULL CHECK (length(hash) = 32)
);

-- Each leaf's text, served in the entry bundles and in ballot proofs. A
-- vote is named by the SHA-256 of its vote_id (vote_ref), its choice by a
-- salted commitment: nothing here names a vote_id, candidate, voter or
-- region. decides is false for a repeat's leaf, which carries no decision.
CREATE TABLE log_leaves (
    leaf      bigint PRIMARY KEY,
    partition integer NOT NULL,
    "offset"  bigint NOT NULL,
    vote_ref  bytea CHECK (length(vote_ref) = 32),
    decides   boolean NOT NULL,
    body      text NOT NULL
);
CREATE INDEX log_leaves_vote_ref ON log_leaves (vote_ref) WHERE vote_ref IS NOT NULL;

-- What each epoch's leaves decide: counted votes per contest, region and
-- candidate, rejected votes per contest and reason. A checkpoint signs
-- the keyed digest of their sum up to its size. Operator-only.
CREATE TABLE log_counts (
    epoch   bigint NOT NULL REFERENCES log_epochs (size),
    kind    text NOT NULL CHECK (kind IN ('counted', 'rejected')),
    contest text NOT NULL,
    region  text NOT NULL,
    choice  text NOT NULL,
    n       bigint NOT NULL CHECK (n > 0),
    PRIMARY KEY (epoch, kind, contest, region, choice)
);

-- Every checkpoint signed, exactly as signed, with the verifier key that
-- checks it. One per tree size: the checkpointer signs only when the tree
-- grew.
CREATE TABLE log_checkpoints (
    size         bigint PRIMARY KEY CHECK (size >= 0),
    created_at   timestamptz NOT NULL,
    note         text NOT NULL,
    verifier_key text NOT NULL
);
CREATE INDEX log_checkpoints_created_at ON log_checkpoints (created_at);

-- Each witness's cosignature line on a checkpoint (c2sp.org/tlog-cosignature):
-- the checkpoint is served with them appended.
CREATE TABLE log_cosignatures (
    size        bigint NOT NULL REFERENCES log_checkpoints (size),
    witness     text NOT NULL,
    line        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (size, witness)
);

-- Operator actions on the log's key: the checkpointer signs only with the
-- key of the latest checkpoint unless a rotation to the new key is
-- recorded here (votewatch keys rotate).
CREATE TABLE log_key_rotations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    verifier_key text NOT NULL,
    reason       text NOT NULL
);

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    -- The reader serves tiles, checkpoints and proofs: nothing it reads
    -- here names a vote_id or a choice. It does not read the epochs
    -- (per-partition offsets) or the counts.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('REVOKE ALL ON %1$s.log_epochs, %1$s.log_counts, %1$s.log_key_rotations FROM votewatch_reader', s);
        EXECUTE format('GRANT SELECT ON %1$s.log_hashes, %1$s.log_leaves, %1$s.log_checkpoints, %1$s.log_cosignatures TO votewatch_reader', s);
    END IF;
    -- The projector appends and never rewrites.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %1$s.log_epochs, %1$s.log_hashes, %1$s.log_leaves, %1$s.log_counts, %1$s.log_checkpoints, %1$s.log_cosignatures, %1$s.log_key_rotations FROM votewatch_projector', s);
        EXECUTE format('GRANT SELECT, INSERT ON %1$s.log_epochs, %1$s.log_hashes, %1$s.log_leaves, %1$s.log_counts, %1$s.log_checkpoints, %1$s.log_cosignatures, %1$s.log_key_rotations TO votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE log_key_rotations, log_cosignatures, log_checkpoints, log_counts, log_leaves, log_hashes, log_epochs;
