package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/sql/db"
	"github.com/votewatch/votewatch/transparency"
)

// CheckpointerConfig wires a Checkpointer.
type CheckpointerConfig struct {
	Trees *Trees
	Key   transparency.Key
	// Origin names the log in every checkpoint: "votewatch/<election>".
	Origin string
	// Every is how often the trees grow and, when anything changed, a
	// checkpoint is published.
	Every time.Duration
	// Publish appends a signed checkpoint to the checkpoints topic.
	Publish func(ctx context.Context, signed []byte) error
}

// Checkpointer grows the trees and publishes signed checkpoints of them:
// every few seconds while anything changes, and a last one when it stops
// (at polls close the votes stop, so the checkpoint after the last decided
// vote is the final one).
type Checkpointer struct {
	cfg  CheckpointerConfig
	log  *slog.Logger
	last string
}

// NewCheckpointer returns a Checkpointer.
func NewCheckpointer(cfg CheckpointerConfig, log *slog.Logger) (*Checkpointer, error) {
	if cfg.Trees == nil || cfg.Key.Signer == nil || cfg.Publish == nil || cfg.Origin == "" {
		return nil, errors.New("new checkpointer: trees, key, origin and publisher are required")
	}
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	return &Checkpointer{cfg: cfg, log: log}, nil
}

// checkpointLockKey elects the one checkpointer of a projection that
// publishes, when several projector processes share it: a session lock,
// which a killed leader's connection releases.
const checkpointLockKey int64 = 0x766f7465_636b7074 // "voteckpt"

// Run checkpoints until ctx ends, then once more. A failed round is logged
// and retried at the next tick: the trees are derived state and wait.
// Of several projector processes sharing a projection, one publishes; the
// others stand by and take over when its session ends.
func (c *Checkpointer) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	var lead *pgxpool.Conn
	defer func() {
		if lead != nil {
			_, _ = lead.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended(current_schema(), $1))", checkpointLockKey)
			lead.Release()
		}
	}()
	round := func(ctx context.Context) {
		if lead != nil {
			if err := lead.Ping(ctx); err != nil {
				lead.Release()
				lead = nil
			}
		}
		if lead == nil {
			var err error
			if lead, err = c.tryLead(ctx); err != nil || lead == nil {
				if err != nil && ctx.Err() == nil {
					c.log.Warn("cannot take the checkpointer's lock; retrying at the next tick", "err", err)
				}
				return
			}
			c.log.Info("this process publishes the checkpoints")
			// A leader taking over does not republish what its
			// predecessor published last.
			if latest, err := db.New(c.cfg.Trees.pool).LatestCheckpoint(ctx); err == nil && len(latest) > 0 {
				text, _, _ := strings.Cut(latest[0].Note, "\n\n")
				if cp, err := transparency.ParseCheckpoint(text + "\n"); err == nil {
					c.last = stateOf(cp)
				}
			}
		}
		if _, err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("checkpoint failed; retrying at the next tick", "err", err)
		}
	}
	for {
		round(ctx)
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			round(final)
			return nil
		case <-t.C:
		}
	}
}

// tryLead takes the checkpointer's lock on a connection of its own, or
// returns nil if another process holds it.
func (c *Checkpointer) tryLead(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := c.cfg.Trees.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended(current_schema(), $1))", checkpointLockKey).Scan(&got); err != nil || !got {
		conn.Release()
		return nil, err
	}
	return conn, nil
}

// Checkpoint grows the trees and, if anything changed since the last
// checkpoint, signs, records and publishes a new one. It returns the
// signed note, or nil when nothing changed.
func (c *Checkpointer) Checkpoint(ctx context.Context) ([]byte, error) {
	added, err := c.cfg.Trees.GrowAll(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := c.cfg.Trees.Snapshot(ctx, c.cfg.Origin)
	if err != nil {
		return nil, err
	}
	state := stateOf(cp)
	if state == c.last {
		return nil, nil
	}
	signed, err := c.cfg.Key.Sign(cp)
	if err != nil {
		return nil, err
	}
	if err := c.cfg.Publish(ctx, signed); err != nil {
		return nil, fmt.Errorf("publish the checkpoint: %w", err)
	}
	if err := c.cfg.Trees.RecordCheckpoint(ctx, cp.Time, signed, c.cfg.Key.Verifier); err != nil {
		return nil, err
	}
	c.last = state
	c.log.Debug("checkpoint published", "leaves_added", added, "counted", cp.Counted, "rejected", cp.Rejected)
	return signed, nil
}

// stateOf is a checkpoint's text without its time: what must change for a
// new checkpoint to say anything new.
func stateOf(c transparency.Checkpoint) string {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(c.Text(), "\n") {
		if !strings.HasPrefix(line, "time ") {
			b.WriteString(line)
		}
	}
	return b.String()
}
