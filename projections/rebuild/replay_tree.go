package rebuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/transparency"
)

// followEpochs grows tree (of the projection behind pool) by each epoch in turn, stopping before the
// first one reaching past what the rebuilt projection has applied (a
// later call, after the catch-up, goes on). It returns a description of
// the first epoch that grew differently, or "".
func followEpochs(ctx context.Context, pool *pgxpool.Pool, tree *trees.Tree, epochs []transparency.Epoch) (string, error) {
	rows, err := db.New(pool).ListAppliedOffsets(ctx, []string{domain.TopicVotes})
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
		if err := tree.GrowEpoch(ctx, e); errors.Is(err, trees.ErrEpochDiffers) {
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
func (r *Rebuilder) rebuildTree(ctx context.Context, pool *pgxpool.Pool, secret transparency.Secret) (*trees.Tree, string, error) {
	tree := trees.NewRebuiltTree(pool, secret, trees.VotesReader(r.events))
	epochs, err := trees.RecordedEpochs(ctx, r.events)
	if err != nil {
		return nil, "", err
	}
	diff, err := followEpochs(ctx, pool, tree, epochs)
	return tree, diff, err
}

// finishTree, under the swap lock (tx on the live projection), grows the
// rebuilt tree by the epochs recorded since rebuildTree and then by the
// live tree's own epochs not yet in the topic, and compares the trees.
func (r *Rebuilder) finishTree(ctx context.Context, tx pgx.Tx, pool *pgxpool.Pool, tree *trees.Tree, diff string) ([]string, int, error) {
	if diff == "" {
		epochs, err := trees.RecordedEpochs(ctx, r.events)
		if err != nil {
			return nil, 0, err
		}
		head, err := tree.Head(ctx)
		if err != nil {
			return nil, 0, err
		}
		live, err := trees.LogEpochs(ctx, db.New(tx), head.N)
		if err != nil {
			return nil, 0, err
		}
		if diff, err = followEpochs(ctx, pool, tree, append(epochs, live...)); err != nil {
			return nil, 0, err
		}
	}
	diffs, compared, err := trees.CompareTrees(ctx, db.New(tx), db.New(pool))
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
		dbutil.Ident(rebuilt), dbutil.Ident(live)))
	if err != nil {
		return fmt.Errorf("carry the checkpoints over: %w", err)
	}
	return nil
}

// liveTreeSize is the live projection's tree size (tx on it).
func liveTreeSize(ctx context.Context, tx pgx.Tx) (int64, error) {
	h, err := trees.LogHead(ctx, db.New(tx))
	return h.N, err
}
