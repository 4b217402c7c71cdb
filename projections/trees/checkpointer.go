package trees

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/transparency"
)

// CheckpointerConfig wires a Checkpointer.
type CheckpointerConfig struct {
	Tree *Tree
	Key  transparency.Key
	// Origin names the log in every checkpoint: "votewatch/<election>".
	Origin string
	// Every is how often the tree grows and, when it grew, a checkpoint
	// is signed.
	Every time.Duration
	// Publish appends a record to the checkpoints topic: each epoch
	// (transparency.Epoch.Text) and each checkpoint as served.
	Publish func(ctx context.Context, record []byte) error
	// Witnesses are asked to cosign every checkpoint; one is served once
	// Quorum of them did (all of them when Quorum is 0).
	Witnesses []transparency.Witness
	Quorum    int
	// HTTP talks to the witnesses (default: a client with a 10 s timeout).
	HTTP *http.Client
}

// Checkpointer grows the tree and publishes signed checkpoints of it:
// every few seconds while it grows, and a last one when it stops. With
// witnesses, a checkpoint is recorded (and so served) only once a quorum
// cosigned it.
type Checkpointer struct {
	cfg CheckpointerConfig
	log *slog.Logger
	// published is the tree size up to which the epochs are in the topic.
	published int64
	// signed is the last checkpoint signed, waiting for its quorum or
	// recorded.
	signed   []byte
	signedCp transparency.Checkpoint
	cosigs   map[string]string
	// witnesses' state: the size each is believed to know, its failures
	// in a row and when to ask again.
	known    map[string]int64
	failures map[string]int
	retryAt  map[string]time.Time

	mu    sync.Mutex
	stats CheckpointerStats
}

// CheckpointerStats is what the metrics read.
type CheckpointerStats struct {
	// QuorumAt is when the last checkpoint reached its quorum (and was
	// recorded); PendingSince when the oldest signed checkpoint still
	// short of it was signed (zero: none).
	QuorumAt, PendingSince time.Time
	// WitnessRequests counts add-checkpoint requests per witness and
	// outcome ("ok", "conflict", "refused", "error").
	WitnessRequests map[[2]string]int64
}

// NewCheckpointer returns a Checkpointer.
func NewCheckpointer(cfg CheckpointerConfig, log *slog.Logger) (*Checkpointer, error) {
	if cfg.Tree == nil || cfg.Key.Signer == nil || cfg.Publish == nil || cfg.Origin == "" {
		return nil, errors.New("new checkpointer: tree, key, origin and publisher are required")
	}
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Quorum == 0 {
		cfg.Quorum = len(cfg.Witnesses)
	}
	if cfg.Quorum < 0 || cfg.Quorum > len(cfg.Witnesses) {
		return nil, fmt.Errorf("new checkpointer: a quorum of %d out of %d witnesses", cfg.Quorum, len(cfg.Witnesses))
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	return &Checkpointer{cfg: cfg, log: log, published: -1, known: map[string]int64{}, failures: map[string]int{}, retryAt: map[string]time.Time{},
		stats: CheckpointerStats{WitnessRequests: map[[2]string]int64{}}}, nil
}

// Stats returns a copy of the checkpointer's counters, for metrics.
func (c *Checkpointer) Stats() CheckpointerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.WitnessRequests = make(map[[2]string]int64, len(c.stats.WitnessRequests))
	for k, v := range c.stats.WitnessRequests {
		s.WitnessRequests[k] = v
	}
	return s
}

// checkpointLockKey elects the one checkpointer of a projection that
// publishes, when several projector processes share it: a session lock,
// which a killed leader's connection releases.
const checkpointLockKey int64 = 0x766f7465_636b7074 // "voteckpt"

// Run checkpoints until ctx ends, then once more. A failed round is logged
// and retried at the next tick: the tree is derived state and waits.
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
			// A new leader republishes the epochs after the latest
			// recorded checkpoint: its predecessor may have stored
			// them and died before publishing.
			c.published = -1
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
	conn, err := c.cfg.Tree.pool.Acquire(ctx)
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

// ErrKeyChanged is returned when the checkpointer's key is not the one
// that signed the latest checkpoint and no rotation to it is recorded.
var ErrKeyChanged = errors.New("the checkpoint key is not the one that signed the latest checkpoint (rotate it with 'votewatch keys rotate')")

// Checkpoint grows the tree, publishes its new epochs and, if it grew
// since the last checkpoint, signs a new one, asks the witnesses to
// cosign it, and records and publishes it once a quorum did. It returns
// the checkpoint recorded, with its cosignatures, or nil when none was.
func (c *Checkpointer) Checkpoint(ctx context.Context) ([]byte, error) {
	q := db.New(c.cfg.Tree.pool)
	latest, err := LatestCheckpointRow(ctx, q)
	if err != nil {
		return nil, err
	}
	if latest != nil {
		if err := c.checkKey(ctx, q, latest.VerifierKey); err != nil {
			return nil, err
		}
	}
	if _, err := c.cfg.Tree.GrowAll(ctx); err != nil {
		return nil, err
	}
	if err := c.publishEpochs(ctx, latest); err != nil {
		return nil, err
	}
	cp, err := c.cfg.Tree.Snapshot(ctx, c.cfg.Origin)
	if err != nil {
		return nil, err
	}
	if latest != nil && cp.Size <= latest.Size {
		return nil, nil
	}
	if c.signed == nil || c.signedCp.Size != cp.Size {
		if latest != nil {
			// Never sign a tree the served history is not a prefix of
			// (a replay swapped in with --accept-diff): witnesses and
			// clients would see a fork.
			old, err := transparency.ParseCheckpoint(noteText(latest.Note))
			if err != nil {
				return nil, fmt.Errorf("read the latest checkpoint: %w", err)
			}
			if err := transparency.CheckConsistent(old.Head(), cp.Head(), c.cfg.Tree.HashReader(ctx)); err != nil {
				return nil, fmt.Errorf("refusing to sign: %w", err)
			}
		}
		signed, err := c.cfg.Key.Sign(cp)
		if err != nil {
			return nil, err
		}
		if c.signed == nil {
			c.mu.Lock()
			c.stats.PendingSince = time.Now()
			c.mu.Unlock()
		}
		c.signed, c.signedCp, c.cosigs = signed, cp, map[string]string{}
	}
	c.cosign(ctx)
	if len(c.cosigs) < c.cfg.Quorum {
		return nil, nil
	}
	if err := c.cfg.Tree.RecordCheckpoint(ctx, c.signedCp, c.signed, c.cfg.Key.Verifier); err != nil {
		return nil, err
	}
	served := append([]byte(nil), c.signed...)
	for _, w := range c.cfg.Witnesses {
		line, ok := c.cosigs[w.Name()]
		if !ok {
			continue
		}
		if err := q.InsertCosignature(ctx, db.InsertCosignatureParams{Size: c.signedCp.Size, Witness: w.Name(), Line: line}); err != nil {
			return nil, fmt.Errorf("record %s's cosignature: %w", w.Name(), err)
		}
		served = append(served, line...)
	}
	if err := c.cfg.Publish(ctx, served); err != nil {
		// Recorded and served; the topic's copy is for the record.
		c.log.Warn("checkpoint recorded, not published to the topic", "err", err)
	}
	c.mu.Lock()
	c.stats.QuorumAt, c.stats.PendingSince = time.Now(), time.Time{}
	c.mu.Unlock()
	c.log.Debug("checkpoint recorded", "size", c.signedCp.Size, "cosignatures", len(c.cosigs))
	c.signed = nil
	return served, nil
}

// checkKey refuses to sign with a key other than the one that signed the
// latest checkpoint, unless the operator recorded a rotation to it.
func (c *Checkpointer) checkKey(ctx context.Context, q *db.Queries, latestKey string) error {
	if latestKey == c.cfg.Key.Verifier {
		return nil
	}
	rot, err := q.LatestKeyRotation(ctx)
	if err != nil {
		return fmt.Errorf("read the key rotations: %w", err)
	}
	if len(rot) > 0 && rot[0] == c.cfg.Key.Verifier {
		return nil
	}
	return fmt.Errorf("%w: signed by %s, this key is %s", ErrKeyChanged, latestKey, c.cfg.Key.Verifier)
}

// publishEpochs appends to the checkpoints topic the epochs not yet
// published: after a restart or a change of leader, those after the
// latest recorded checkpoint (the topic may then hold an epoch twice;
// a replay skips the copy).
func (c *Checkpointer) publishEpochs(ctx context.Context, latest *db.LogCheckpoint) error {
	if c.published < 0 {
		// Every epoch a recorded checkpoint covers was published
		// before it was signed.
		c.published = 0
		if latest != nil {
			c.published = latest.Size
		}
	}
	epochs, err := c.cfg.Tree.Epochs(ctx, c.published)
	if err != nil {
		return err
	}
	for _, e := range epochs {
		if err := c.cfg.Publish(ctx, []byte(e.Text())); err != nil {
			return fmt.Errorf("publish the epoch to %d leaves: %w", e.Size, err)
		}
		c.published = e.Size
	}
	return nil
}

// cosign asks each witness that has not cosigned the pending checkpoint,
// and is not backing off, to cosign it.
func (c *Checkpointer) cosign(ctx context.Context) {
	now := time.Now()
	for _, w := range c.cfg.Witnesses {
		if _, ok := c.cosigs[w.Name()]; ok || now.Before(c.retryAt[w.Name()]) {
			continue
		}
		line, err := c.addCheckpoint(ctx, w)
		if err != nil {
			c.failures[w.Name()]++
			c.retryAt[w.Name()] = now.Add(transparency.Backoff(c.failures[w.Name()]))
			c.log.Warn("witness did not cosign", "witness", w.Name(), "size", c.signedCp.Size, "err", err)
			continue
		}
		c.failures[w.Name()], c.retryAt[w.Name()] = 0, time.Time{}
		c.cosigs[w.Name()] = line
	}
}

// addCheckpoint sends the pending checkpoint to w with a consistency proof
// from the size w is believed to know; when w answers with its own size
// (409), once more from that size.
func (c *Checkpointer) addCheckpoint(ctx context.Context, w transparency.Witness) (string, error) {
	for attempt := 0; ; attempt++ {
		old := c.known[w.Name()]
		if old > c.signedCp.Size {
			return "", fmt.Errorf("%w: it knows %d leaves, more than this log's %d", transparency.ErrRefused, old, c.signedCp.Size)
		}
		var proof tlog.TreeProof
		if old > 0 && old < c.signedCp.Size {
			var err error
			if proof, err = tlog.ProveTree(c.signedCp.Size, old, c.cfg.Tree.HashReader(ctx)); err != nil {
				return "", fmt.Errorf("prove %d to %d leaves: %w", old, c.signedCp.Size, err)
			}
		}
		line, err := w.AddCheckpoint(ctx, c.cfg.HTTP, c.signed, old, proof)
		var conflict *transparency.ErrConflict
		switch {
		case err == nil:
			c.count(w.Name(), "ok")
			c.known[w.Name()] = c.signedCp.Size
			return line, nil
		case errors.As(err, &conflict) && attempt == 0:
			c.count(w.Name(), "conflict")
			c.known[w.Name()] = conflict.Size
			continue
		case errors.Is(err, transparency.ErrRefused):
			c.count(w.Name(), "refused")
		default:
			c.count(w.Name(), "error")
		}
		return "", err
	}
}

func (c *Checkpointer) count(witness, outcome string) {
	c.mu.Lock()
	c.stats.WitnessRequests[[2]string{witness, outcome}]++
	c.mu.Unlock()
}

// LatestCheckpointRow returns the newest signed checkpoint, or nil before
// the first.
func LatestCheckpointRow(ctx context.Context, q *db.Queries) (*db.LogCheckpoint, error) {
	rows, err := q.LatestLogCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the latest checkpoint: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// noteText is a signed note's text: everything before the blank line.
func noteText(note string) string {
	text, _, _ := strings.Cut(note, "\n\n")
	return text + "\n"
}

// RecordKeyRotation records the operator's decision that checkpoints are
// signed from now on with the key whose verifier key is vkey: the
// checkpointer signs with no other key than the latest checkpoint's
// unless this was recorded.
func RecordKeyRotation(ctx context.Context, pool *pgxpool.Pool, vkey, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("a key rotation needs a reason")
	}
	if err := db.New(pool).InsertKeyRotation(ctx, db.InsertKeyRotationParams{VerifierKey: vkey, Reason: reason}); err != nil {
		return fmt.Errorf("record the key rotation: %w", err)
	}
	return nil
}
