-- The transparency log (README, "Auditing an election"): one RFC 6962
-- Merkle tree per partition of the votes topic, one leaf per message in
-- offset order, over the decided prefix of the partition. Derived like
-- every other table here: replay rebuilds it, and equal decisions give
-- equal roots.

-- +goose Up
-- Each partition's tree: its size (leaves), its root, and the offset after
-- its last leaf. Written in the same transaction as the hashes and leaves
-- it covers, so a crash cannot split them.
CREATE TABLE tree_heads (
    partition   integer PRIMARY KEY,
    size        bigint NOT NULL CHECK (size >= 0),
    root        bytea NOT NULL CHECK (length(root) = 32),
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every stored hash of every tree, at its sumdb/tlog StoredHashIndex.
CREATE TABLE tree_hashes (
    partition integer NOT NULL,
    idx       bigint NOT NULL,
    hash      bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (partition, idx)
);

-- Each leaf's text, so that a voter holding a receipt can be given the
-- leaf and its inclusion proof. The choice appears only as a salted
-- commitment (transparency.Commit): nothing here names a candidate, a
-- voter or a region.
CREATE TABLE tree_leaves (
    partition integer NOT NULL,
    leaf      bigint NOT NULL,
    "offset"  bigint NOT NULL,
    vote_id   uuid,
    body      text NOT NULL,
    PRIMARY KEY (partition, leaf)
);
CREATE INDEX tree_leaves_vote_id ON tree_leaves (vote_id) WHERE vote_id IS NOT NULL;

-- What the leaves so far decide, summed: counted votes per contest,
-- region and candidate, rejected votes per contest and reason. A
-- checkpoint signs their digest.
CREATE TABLE tree_counts (
    kind    text NOT NULL CHECK (kind IN ('counted', 'rejected')),
    contest text NOT NULL,
    region  text NOT NULL,
    choice  text NOT NULL,
    n       bigint NOT NULL CHECK (n >= 0),
    PRIMARY KEY (kind, contest, region, choice)
);

-- Every checkpoint published, exactly as signed, with the verifier key
-- (sumdb/note text format) that checks it: the read API serves both. An
-- observer should still pin the key out of band.
CREATE TABLE checkpoints (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at   timestamptz NOT NULL,
    note         text NOT NULL,
    verifier_key text NOT NULL
);
CREATE INDEX checkpoints_created_at ON checkpoints (created_at);

-- +goose StatementBegin
DO $$
DECLARE
    s text := quote_ident(current_schema());
BEGIN
    -- The reader serves checkpoints and proofs; nothing it reads here
    -- names a choice. The projector may not rewrite a published
    -- checkpoint.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_reader') THEN
        EXECUTE format('GRANT SELECT ON %1$s.tree_heads, %1$s.tree_hashes, %1$s.tree_leaves, %1$s.tree_counts, %1$s.checkpoints TO votewatch_reader', s);
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'votewatch_projector') THEN
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %1$s.checkpoints FROM votewatch_projector', s);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE checkpoints;
DROP TABLE tree_counts;
DROP TABLE tree_leaves;
DROP TABLE tree_hashes;
DROP TABLE tree_heads;
