package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/sql/db"
	"github.com/votewatch/votewatch/transparency"
)

// RecordedEpochs reads the epochs recorded in the checkpoints topic, in
// the order they were appended (an epoch may be there twice; a tree
// growing them skips the copy). The topic's other records, the signed
// checkpoints, are left out. A log without the topic has no epochs.
func RecordedEpochs(ctx context.Context, log ReplayLog) ([]transparency.Epoch, error) {
	ends, err := log.HighWatermarks(ctx, domain.TopicCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("read the checkpoints topic's ends: %w", err)
	}
	var out []transparency.Epoch
	from := map[int32]int64{}
	for p := range ends {
		from[p] = 0
	}
	err = log.ReadRange(ctx, domain.TopicCheckpoints, from, ends, func(recs []LogRecord) error {
		for _, r := range recs {
			if !transparency.IsEpoch(r.Value) {
				continue
			}
			e, err := transparency.ParseEpoch(string(r.Value))
			if err != nil {
				return fmt.Errorf("checkpoints partition %d offset %d: %w", r.Partition, r.Offset, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the checkpoints topic: %w", err)
	}
	return out, nil
}

// followEpochs grows tree by each epoch in turn, stopping before the
// first one reaching past what the rebuilt projection has applied (a
// later call, after the catch-up, goes on). It returns a description of
// the first epoch that grew differently, or "".
func followEpochs(ctx context.Context, tree *Tree, epochs []transparency.Epoch) (string, error) {
	rows, err := db.New(tree.pool).ListAppliedOffsets(ctx, []string{domain.TopicVotes})
	if err != nil {
		return "", fmt.Errorf("read the votes' applied offsets: %w", err)
	}
	applied := map[int32]int64{}
	for _, r := range rows {
		applied[r.Partition] = r.NextOffset
	}
	for _, e := range epochs {
		for p, end := range e.Ends {
			if end > applied[p] {
				return "", nil
			}
		}
		if err := tree.GrowEpoch(ctx, e); errors.Is(err, ErrEpochDiffers) {
			return err.Error(), nil
		} else if err != nil {
			return "", err
		}
	}
	return "", nil
}

// rebuildTree grows the rebuilt projection's tree (behind pool) by the
// epochs the checkpoints topic records, as far as the projection has
// applied: the same tree live grew, from the log alone.
func (r *Rebuilder) rebuildTree(ctx context.Context, pool *pgxpool.Pool, secret transparency.Secret) (*Tree, string, error) {
	tree := &Tree{pool: pool, secret: secret, read: VotesReader(r.events)}
	epochs, err := RecordedEpochs(ctx, r.events)
	if err != nil {
		return nil, "", err
	}
	diff, err := followEpochs(ctx, tree, epochs)
	return tree, diff, err
}

// finishTree, under the swap lock (tx on the live projection), grows the
// rebuilt tree by the epochs recorded since rebuildTree and then by the
// live tree's own epochs not yet in the topic, and compares the trees.
func (r *Rebuilder) finishTree(ctx context.Context, tx pgx.Tx, tree *Tree, diff string) ([]string, int, error) {
	if diff == "" {
		epochs, err := RecordedEpochs(ctx, r.events)
		if err != nil {
			return nil, 0, err
		}
		head, err := tree.Head(ctx)
		if err != nil {
			return nil, 0, err
		}
		live, err := logEpochs(ctx, db.New(tx), head.N)
		if err != nil {
			return nil, 0, err
		}
		if diff, err = followEpochs(ctx, tree, append(epochs, live...)); err != nil {
			return nil, 0, err
		}
	}
	diffs, compared, err := compareTrees(ctx, db.New(tx), db.New(tree.pool))
	if err != nil {
		return nil, 0, fmt.Errorf("compare the trees: %w", err)
	}
	if diff != "" {
		diffs = append([]string{diff}, diffs...)
	}
	return diffs, compared, nil
}

// carryCheckpoints copies the live projection's checkpoints, their
// cosignatures and the key rotations into the rebuilt one: what was
// published stays published.
func carryCheckpoints(ctx context.Context, tx pgx.Tx, rebuilt, live string) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.log_checkpoints SELECT * FROM %[2]s.log_checkpoints;
		INSERT INTO %[1]s.log_cosignatures SELECT * FROM %[2]s.log_cosignatures;
		INSERT INTO %[1]s.log_key_rotations OVERRIDING SYSTEM VALUE SELECT * FROM %[2]s.log_key_rotations;
		SELECT setval(pg_get_serial_sequence('%[1]s.log_key_rotations', 'id'), max(id)) FROM %[1]s.log_key_rotations HAVING count(*) > 0`,
		ident(rebuilt), ident(live)))
	if err != nil {
		return fmt.Errorf("carry the checkpoints over: %w", err)
	}
	return nil
}

// liveTreeSize is the live projection's tree size (tx on it).
func liveTreeSize(ctx context.Context, tx pgx.Tx) (int64, error) {
	h, err := logHead(ctx, db.New(tx))
	return h.N, err
}
