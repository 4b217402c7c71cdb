package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/transparency"
)

// TransparencyConfig configures the transparency log (README, "Auditing
// an election"). No CheckpointKey: no transparency log.
type TransparencyConfig struct {
	// CheckpointKey and ElectionSecret are files, made on first use.
	CheckpointKey, ElectionSecret string
	Every                         time.Duration
	// Election names the log: votewatch/<Election>.
	Election string
}

// DemoDefaults keeps the demo's key and secret with its data.
func (c TransparencyConfig) DemoDefaults(dataDir string) TransparencyConfig {
	if c.CheckpointKey == "" {
		c.CheckpointKey = filepath.Join(dataDir, "checkpoint.key")
	}
	if c.ElectionSecret == "" {
		c.ElectionSecret = filepath.Join(dataDir, "election.secret")
	}
	return c
}

func (c TransparencyConfig) origin() string { return "votewatch/" + c.Election }

// newCheckpointer wires the checkpointer of the projection behind pool, or
// returns nil when no key is configured.
func newCheckpointer(log *slog.Logger, pool *pgxpool.Pool, c TransparencyConfig, events projections.ReplayLog, pub message.Publisher, opener *domain.Opener) (*projections.Checkpointer, error) {
	if c.CheckpointKey == "" {
		return nil, nil
	}
	if c.ElectionSecret == "" {
		return nil, errors.New("--checkpoint-key needs --election-secret")
	}
	key, err := transparency.LoadOrCreateKey(c.CheckpointKey, "votewatch-"+c.Election)
	if err != nil {
		return nil, err
	}
	secret, err := transparency.LoadOrCreateSecret(c.ElectionSecret)
	if err != nil {
		return nil, err
	}
	trees, err := projections.NewTrees(pool, secret, projections.VotesReader(events))
	if err != nil {
		return nil, err
	}
	trees.OpenWith(opener)
	log.Info("transparency log on", "origin", c.origin(), "verifier_key", key.Verifier, "every", c.Every)
	return projections.NewCheckpointer(projections.CheckpointerConfig{
		Trees: trees, Key: key, Origin: c.origin(), Every: c.Every,
		Publish: func(ctx context.Context, signed []byte) error {
			msg := message.NewMessage(watermill.NewUUID(), signed)
			msg.SetContext(ctx)
			if err := pub.Publish(domain.TopicCheckpoints, msg); err != nil {
				return fmt.Errorf("publish to %s: %w", domain.TopicCheckpoints, err)
			}
			return nil
		},
	}, log.With("component", "checkpointer"))
}

// ElectionSecret loads the election secret from path or, when path is
// empty and db is the demo's, the demo's if it has one. Without either it
// returns nil: the trees' leaves are then not recomputed.
func ElectionSecret(log *slog.Logger, path string, db AdminDatabase) (transparency.Secret, error) {
	if path == "" && db.URL == "" {
		dir := db.DataDir
		if dir == "" {
			var err error
			if dir, err = postgres.DefaultDir(); err != nil {
				return nil, err
			}
		}
		if demo := filepath.Join(dir, "election.secret"); fileExists(demo) {
			path = demo
		}
	}
	if path == "" {
		log.Warn("no election secret: the transparency trees' leaves are not recomputed (--election-secret)")
		return nil, nil
	}
	return transparency.LoadSecret(path)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// AuditOptions say what `audit` checks beyond the recount.
type AuditOptions struct {
	AllowTruncatedLog bool
	// Checkpoint is a saved checkpoint's file; VerifierKey the key's text
	// or a file holding it.
	Checkpoint, VerifierKey string
	Secret                  transparency.Secret
}

// auditTrees checks the transparency log and prints what it checked.
func (a *App) auditTrees(ctx context.Context, opt AuditOptions, out io.Writer) (projections.TreeAudit, error) {
	o := projections.TreeAuditOptions{Secret: opt.Secret, VerifierKey: opt.VerifierKey, Opener: a.Sealing.Opener}
	if opt.VerifierKey != "" && fileExists(opt.VerifierKey) {
		b, err := os.ReadFile(opt.VerifierKey)
		if err != nil {
			return projections.TreeAudit{}, err
		}
		o.VerifierKey = strings.TrimSpace(string(b))
	}
	if opt.Checkpoint != "" {
		var err error
		if o.Checkpoint, err = os.ReadFile(opt.Checkpoint); err != nil {
			return projections.TreeAudit{}, err
		}
	}
	t, err := projections.AuditTrees(ctx, a.Pool, a.ReplayLog(), o)
	if err != nil {
		return t, err
	}
	fmt.Fprintf(out, "transparency log: %d trees, %d leaves", t.Trees, t.Leaves)
	if t.RootsCompared > 0 {
		fmt.Fprintf(out, "; %d roots recomputed from the log", t.RootsCompared)
	}
	if t.Checkpoint != nil {
		fmt.Fprintf(out, "; checkpoint of %s (%s, counted %d, rejected %d) signature verified",
			t.Checkpoint.Time.Format(time.RFC3339), t.Checkpoint.Origin, t.Checkpoint.Counted, t.Checkpoint.Rejected)
	}
	fmt.Fprintln(out)
	for _, p := range t.Problems {
		fmt.Fprintln(out, "FAIL  "+p)
	}
	if len(t.Problems) == 0 && t.Checkpoint != nil {
		fmt.Fprintln(out, "ok    the checkpoint's trees are prefixes of today's, and its tallies are the recount's at its offsets")
	}
	return t, nil
}
