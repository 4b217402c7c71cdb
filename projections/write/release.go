package write

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
)

// ReleaserConfig tunes the releaser.
type ReleaserConfig struct {
	// Every is how often the exact count is compared with what is
	// released (default 200ms): with the read API's 50ms snapshot poll,
	// a cell that has gathered k new votes is on the dashboard within
	// about a quarter of a second.
	Every time.Duration
	// Now is the clock the schedule's close is read against (default
	// time.Now).
	Now func() time.Time
}

// Releaser moves the published tallies (00028's released_cells) towards
// the exact count as domain.Disclosure allows: a cell (one region, gender
// or age band of a contest, with its candidates' counts) moves once it
// stands k votes from its released counts, and every cell is exact once
// the polls are closed. The public read side (NewPublicResults) reads
// only what it released.
//
// Any number of releasers may run against one database (one per projector
// process): a transaction-level advisory lock lets one release at a time,
// and since each release is worked out from the database alone (exact and
// released counts, the schedule, the operator's close), it does not matter
// which. A restart changes nothing: what was released stays released.
type Releaser struct {
	pool *pgxpool.Pool
	rule domain.Disclosure
	cfg  ReleaserConfig
	log  *slog.Logger
}

// NewReleaser returns a releaser of pool's projection under rule. Call Run.
func NewReleaser(pool *pgxpool.Pool, rule domain.Disclosure, cfg ReleaserConfig, log *slog.Logger) (*Releaser, error) {
	if pool == nil || log == nil {
		return nil, errors.New("new releaser: nil pool or logger")
	}
	if rule.K() < 1 {
		return nil, errors.New("new releaser: no disclosure rule (domain.NewDisclosure)")
	}
	if cfg.Every <= 0 {
		cfg.Every = 200 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Releaser{pool: pool, rule: rule, cfg: cfg, log: log}, nil
}

// Run releases every cfg.Every until ctx ends. A failed release is logged
// and tried again at the next tick (nothing was released by it).
func (r *Releaser) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.Every)
	defer ticker.Stop()
	for {
		if _, err := r.Release(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("release tallies", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// cellKey names a released row: a breakdown's bucket in a contest.
type cellKey struct{ contest, dimension, bucket string }

// Release compares the exact count with what is released once, and
// releases the cells that are due, in one transaction. It returns how many
// cells it released (0 also when another releaser holds the lock).
func (r *Releaser) Release(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginTxFunc(ctx, r.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := dbutil.HoldSwapLock(ctx, tx); err != nil {
			return err
		}
		q := db.New(tx)
		locked, err := q.TryReleaseLock(ctx)
		if err != nil || !locked {
			return err
		}
		now := r.cfg.Now().UTC()
		closing, err := q.GetPollsClosing(ctx)
		if err != nil {
			return err
		}
		closed := domain.PollsClosed(now, closing.LatestCloses, closing.ClosedByOperator)
		state, err := q.GetReleaseState(ctx)
		if err != nil {
			return err
		}
		exact, err := q.ListExactCells(ctx)
		if err != nil {
			return err
		}
		released, err := q.ListReleasedCells(ctx)
		if err != nil {
			return err
		}
		rows := map[cellKey]map[string][2]int64{} // candidate → {released, exact}
		row := func(k cellKey) map[string][2]int64 {
			m := rows[k]
			if m == nil {
				m = map[string][2]int64{}
				rows[k] = m
			}
			return m
		}
		for _, c := range released {
			m := row(cellKey{c.ContestID, c.Dimension, c.Bucket})
			v := m[c.CandidateID]
			v[0] = c.Votes
			m[c.CandidateID] = v
		}
		for _, c := range exact {
			m := row(cellKey{c.ContestID, c.Dimension, c.Bucket})
			v := m[c.CandidateID]
			v[1] = c.Votes
			m[c.CandidateID] = v
		}
		var up db.UpsertReleasedCellsParams
		steps := map[[2]string]int64{} // contest, candidate → votes added
		for k, m := range rows {
			cands := make([]string, 0, len(m))
			for c := range m {
				cands = append(cands, c)
			}
			slices.Sort(cands)
			rel, ex := make([]int64, len(cands)), make([]int64, len(cands))
			for i, c := range cands {
				rel[i], ex[i] = m[c][0], m[c][1]
			}
			if !r.rule.ReleaseDue(rel, ex, closed) {
				continue
			}
			n++
			for i, c := range cands {
				up.ContestIDs = append(up.ContestIDs, k.contest)
				up.Dimensions = append(up.Dimensions, k.dimension)
				up.Buckets = append(up.Buckets, k.bucket)
				up.CandidateIDs = append(up.CandidateIDs, c)
				up.Votes = append(up.Votes, ex[i])
				if k.dimension == "region" && ex[i] != rel[i] {
					// The region rows partition a contest's votes, so
					// their moves are the contest's timeline.
					steps[[2]string{k.contest, c}] += ex[i] - rel[i]
				}
			}
		}
		if n == 0 && closed == state.PollsClosed && int64(state.MinCell) == r.rule.K() {
			return nil
		}
		if n > 0 {
			if err := q.UpsertReleasedCells(ctx, up); err != nil {
				return err
			}
			add := db.AddReleasedStepsParams{At: now}
			for k, v := range steps {
				add.ContestIDs = append(add.ContestIDs, k[0])
				add.CandidateIDs = append(add.CandidateIDs, k[1])
				add.Votes = append(add.Votes, v)
			}
			if err := q.AddReleasedSteps(ctx, add); err != nil {
				return err
			}
		}
		return q.MarkReleased(ctx, db.MarkReleasedParams{ReleasedAt: now, PollsClosed: closed, MinCell: int32(min(r.rule.K(), math.MaxInt32))})
	})
	if err != nil {
		return 0, fmt.Errorf("release tallies: %w", err)
	}
	return n, nil
}

// CarryReleased copies what was released from the live schema into a
// rebuilt one, inside the replay's swap transaction (tx holds the swap
// lock). A rebuilt projection starts with nothing released; without this
// the first release after a swap would move each cell from its old
// published figure to the exact one in a step that may be under k.
func CarryReleased(ctx context.Context, tx pgx.Tx, live, rebuilt string) error {
	l, r := pgx.Identifier{live}.Sanitize(), pgx.Identifier{rebuilt}.Sanitize()
	if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %[2]s.released_cells; DELETE FROM %[2]s.released_steps;
		INSERT INTO %[2]s.released_cells SELECT * FROM %[1]s.released_cells;
		INSERT INTO %[2]s.released_steps SELECT * FROM %[1]s.released_steps;
		UPDATE %[2]s.release_state n SET releases = o.releases, released_at = o.released_at, polls_closed = o.polls_closed, min_cell = o.min_cell
		FROM %[1]s.release_state o`, l, r)); err != nil {
		return fmt.Errorf("carry the released tallies over: %w", err)
	}
	return nil
}
