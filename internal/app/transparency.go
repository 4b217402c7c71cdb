package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/torchwood"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/audit"
	"github.com/votewatch/votewatch/projections/trees"
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
	// CreateKeys makes the key and the secret when their files are
	// missing: the demo only. Every other command refuses a missing file
	// (`votewatch keys init` makes them).
	CreateKeys bool
	// Witnesses cosign each checkpoint; Quorum of them must (0: all).
	Witnesses []transparency.Witness
	Quorum    int
}

// DemoDefaults keeps the demo's key and secret with its data.
func (c TransparencyConfig) DemoDefaults(dataDir string) TransparencyConfig {
	if c.CheckpointKey == "" {
		c.CheckpointKey = filepath.Join(dataDir, "checkpoint.key")
	}
	if c.ElectionSecret == "" {
		c.ElectionSecret = filepath.Join(dataDir, "election.secret")
	}
	c.CreateKeys = true
	return c
}

func (c TransparencyConfig) origin() string { return "votewatch/" + c.Election }

// newCheckpointer wires the checkpointer of the projection behind pool, or
// returns nil when no key is configured.
func newCheckpointer(log *slog.Logger, pool *pgxpool.Pool, c TransparencyConfig, events projections.ReplayLog, pub message.Publisher, opener *domain.Opener) (*trees.Checkpointer, error) {
	if c.CheckpointKey == "" {
		return nil, nil
	}
	if c.ElectionSecret == "" {
		return nil, errors.New("--checkpoint-key needs --election-secret")
	}
	load, loadSecret := transparency.LoadKey, transparency.LoadSecret
	if c.CreateKeys {
		load = func(path string) (transparency.Key, error) {
			return transparency.LoadOrCreateKey(path, "votewatch-"+c.Election)
		}
		loadSecret = transparency.LoadOrCreateSecret
	}
	key, err := load(c.CheckpointKey)
	if err != nil {
		return nil, err
	}
	secret, err := loadSecret(c.ElectionSecret)
	if err != nil {
		return nil, err
	}
	tree, err := trees.NewTree(pool, secret, trees.VotesReader(events))
	if err != nil {
		return nil, err
	}
	tree.OpenWith(opener)
	log.Info("transparency log on", "origin", c.origin(), "verifier_key", key.Verifier, "every", c.Every)
	return trees.NewCheckpointer(trees.CheckpointerConfig{
		Tree: tree, Key: key, Origin: c.origin(), Every: c.Every, Witnesses: c.Witnesses, Quorum: c.Quorum,
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
	// AllowLag audits a projection that has not applied the whole log.
	AllowLag bool
	// LogURL is the log's tiles (".../log/"): the served checkpoint is
	// checked (its cosignatures by Quorum of Witnesses, its consistency
	// with Checkpoint) and every entry read through the tiles.
	LogURL    string
	Witnesses []string
	Quorum    int
	// Checkpoint is a saved checkpoint's file; VerifierKey the key's text
	// or a file holding it.
	Checkpoint, VerifierKey string
	Secret                  transparency.Secret
}

// auditTrees checks the transparency log and prints what it checked.
func (a *App) auditTrees(ctx context.Context, opt AuditOptions, out io.Writer) (audit.TreeAudit, error) {
	o := audit.TreeAuditOptions{Secret: opt.Secret, VerifierKey: opt.VerifierKey, Opener: a.Sealing.Opener}
	if opt.VerifierKey != "" && fileExists(opt.VerifierKey) {
		b, err := os.ReadFile(opt.VerifierKey)
		if err != nil {
			return audit.TreeAudit{}, err
		}
		o.VerifierKey = strings.TrimSpace(string(b))
	}
	o.Witnesses, o.Quorum = opt.Witnesses, opt.Quorum
	var saved []byte
	if opt.Checkpoint != "" {
		var err error
		if saved, err = os.ReadFile(opt.Checkpoint); err != nil {
			return audit.TreeAudit{}, err
		}
		o.Checkpoint = saved
	}
	var served []byte
	if opt.LogURL != "" {
		if o.VerifierKey == "" {
			return audit.TreeAudit{}, errors.New("--log-url needs --verifier-key: the served checkpoint is checked against the key pinned beforehand")
		}
		var err error
		if served, err = fetchCheckpoint(ctx, opt.LogURL); err != nil {
			return audit.TreeAudit{}, err
		}
		if saved == nil {
			o.Checkpoint = served
		}
	}
	t, err := audit.AuditTrees(ctx, a.Pool, a.ReplayLog(), o)
	if err != nil {
		return t, err
	}
	if served != nil {
		t.Problems = append(t.Problems, a.auditTiles(ctx, opt.LogURL, served, saved, o, t, out)...)
	}
	fmt.Fprintf(out, "transparency log: %d leaves", t.Leaves)
	if t.RootsCompared > 0 {
		fmt.Fprintf(out, "; %d roots recomputed from the log", t.RootsCompared)
	}
	if t.Checkpoint != nil {
		fmt.Fprintf(out, "; checkpoint of %s (%s, %d leaves) signature verified",
			t.Checkpoint.Time.Format(time.RFC3339), t.Checkpoint.Origin, t.Checkpoint.Size)
	}
	fmt.Fprintln(out)
	for _, p := range t.Problems {
		fmt.Fprintln(out, "FAIL  "+p)
	}
	if len(t.Problems) == 0 && t.Checkpoint != nil {
		fmt.Fprintln(out, "ok    the checkpoint's tree is a prefix of today's, and its tallies are the recount's at its size")
	}
	return t, nil
}

// fetchCheckpoint reads the served checkpoint, logURL + "checkpoint".
func fetchCheckpoint(ctx context.Context, logURL string) ([]byte, error) {
	logURL = strings.TrimRight(logURL, "/") + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, logURL+"checkpoint", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the served checkpoint: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, transparency.MaxCheckpointSize+1))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the served checkpoint: %s %v", resp.Status, err)
	}
	return b, nil
}

// auditTiles checks the served checkpoint as an observer would, through
// the tiles alone: its signature and cosignatures, its consistency with a
// checkpoint saved earlier, and every entry read back against its root
// (torchwood's Client.Entries); the entries' decisions must total the
// recount's at its size. It returns the problems found.
func (a *App) auditTiles(ctx context.Context, logURL string, served, saved []byte, o audit.TreeAuditOptions, t audit.TreeAudit, out io.Writer) []string {
	var problems []string
	c, cosigners, err := transparency.OpenWitnessed(served, o.VerifierKey, o.Witnesses, o.Quorum)
	if err != nil {
		return []string{"the served checkpoint: " + err.Error()}
	}
	tr, err := transparency.TileReader(strings.TrimRight(logURL, "/")+"/", nil)
	if err != nil {
		return []string{err.Error()}
	}
	if saved != nil {
		old, err := transparency.Open(saved, o.VerifierKey)
		if err == nil {
			err = transparency.CheckExtends(ctx, tr, old.Head(), c.Head())
		}
		if err != nil {
			problems = append(problems, "the served checkpoint against the saved one: "+err.Error())
		}
	}
	client, err := torchwood.NewClient(tr)
	if err != nil {
		return append(problems, err.Error())
	}
	var n, counted, rejected int64
	err = transparency.ReadEntries(ctx, client, c.Head(), func(i int64, entry []byte) error {
		l, err := transparency.ParseLeaf(string(entry))
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		switch {
		case l.Decision == transparency.Counted:
			counted++
		case strings.HasPrefix(l.Decision, transparency.Rejected+" "):
			rejected++
		}
		n++
		return nil
	})
	if err != nil || n != c.Size {
		return append(problems, fmt.Sprintf("read %d of the served tree's %d entries through the tiles: %v", n, c.Size, err))
	}
	fmt.Fprintf(out, "tiles: %d entries read against the served checkpoint's root (%s), cosigned by %d witness(es) %s\n",
		n, logURL, len(cosigners), strings.Join(cosigners, ", "))
	if saved == nil && len(o.Secret) > 0 && (counted != t.Counted || rejected != t.Rejected) {
		problems = append(problems, fmt.Sprintf("the served tree's entries decide counted %d, rejected %d; the recount at its size, counted %d, rejected %d",
			counted, rejected, t.Counted, t.Rejected))
	}
	return problems
}
