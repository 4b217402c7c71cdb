package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/votewatch/votewatch/projections/read"
)

// SnapshotConfig tunes the snapshot cache.
type SnapshotConfig struct {
	// Poll is how often the projection's watermark is checked (default
	// 50ms): the bound on how stale a cached answer can be.
	Poll time.Duration
}

// Snapshots keeps the read API's answers in memory: it builds them once per
// change of the projection, from one read-only REPEATABLE READ transaction,
// however many clients read them. The routes it serves (dashboard, summary,
// candidates, regions, the live stream) therefore always show the same
// state, and their ETag names that state.
//
// It is safe for concurrent use. Run follows the projection; without it the
// cache stays empty. As in Watermill's server-sent-events example, the
// state lives here and the endpoints (API, Stream) only serve it.
type Snapshots struct {
	cfg     SnapshotConfig
	results *read.Results
	log     *slog.Logger

	mu      sync.Mutex
	cur     *snapshot
	changed chan struct{} // closed, and replaced, when cur changes
	done    chan struct{} // closed when Run returns
}

// snapshot is every cached answer, encoded from one read of the projection.
// It is never modified once built.
type snapshot struct {
	// etag is a digest of the content: equal answers have equal tags,
	// across restarts and replicas.
	etag       string
	mark       read.Watermark
	dashboard  []byte
	summary    []byte
	candidates []byte
	regions    []byte
	region     map[string][]byte
}

// NewSnapshots returns a cache over results. Call Run.
func NewSnapshots(results *read.Results, cfg SnapshotConfig, log *slog.Logger) (*Snapshots, error) {
	if results == nil || log == nil {
		return nil, errors.New("new snapshots: nil results or logger")
	}
	if cfg.Poll == 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	return &Snapshots{cfg: cfg, results: results, log: log, changed: make(chan struct{}), done: make(chan struct{})}, nil
}

// Run polls the projection's watermark until ctx ends and rebuilds the
// snapshot when it moves. When Run returns, every live stream ends.
func (s *Snapshots) Run(ctx context.Context) {
	defer close(s.done)
	ticker := time.NewTicker(s.cfg.Poll)
	defer ticker.Stop()
	for {
		s.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// refresh rebuilds the snapshot if the projection moved since the current
// one was read.
func (s *Snapshots) refresh(ctx context.Context) {
	cur, _ := s.watch()
	if cur != nil {
		mark, err := s.results.Watermark(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("snapshots: read watermark", "err", err)
			}
			return
		}
		if mark.Equal(cur.mark) {
			return
		}
	}
	next, err := buildSnapshot(ctx, s.results)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("snapshots: read dashboard", "err", err)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.etag == next.etag {
		// Same content (a redelivery moved only the watermark): keep the
		// answers, and their generated_at, as they were.
		kept := *s.cur
		kept.mark = next.mark
		s.cur = &kept
		return
	}
	s.cur = next
	close(s.changed)
	s.changed = make(chan struct{})
}

// watch returns the current snapshot (nil before the first) and a channel
// closed when a newer one replaces it.
func (s *Snapshots) watch() (*snapshot, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.changed
}

// current returns the current snapshot, or nil before the first one.
func (s *Snapshots) current() *snapshot {
	cur, _ := s.watch()
	return cur
}

// buildSnapshot reads the projection once and encodes every answer.
func buildSnapshot(ctx context.Context, results *read.Results) (*snapshot, error) {
	d, err := results.Dashboard(ctx, dashboardOptions)
	if err != nil {
		return nil, err
	}
	dj := toDashboardJSON(d, time.Time{})
	snap := &snapshot{mark: d.Watermark, region: make(map[string][]byte, len(dj.Regions))}
	enc := func(v any) ([]byte, error) {
		b, err := json.Marshal(v)
		return append(b, '\n'), err
	}
	// The tag is taken before generated_at is set, so it names the
	// content alone.
	var errs [6]error
	var content []byte
	content, errs[0] = enc(dj)
	sum := sha256.Sum256(content)
	snap.etag = fmt.Sprintf(`"%x"`, sum[:12])
	dj.Generated = time.Now().UTC()
	snap.dashboard, errs[1] = enc(dj)
	snap.summary, errs[2] = enc(dj.Summary)
	snap.candidates, errs[3] = enc(map[string]any{"candidates": dj.Candidates})
	snap.regions, errs[4] = enc(map[string]any{"regions": dj.Regions})
	for _, g := range dj.Regions {
		var err error
		if snap.region[g.Region], err = enc(g); err != nil {
			errs[5] = err
		}
	}
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return snap, nil
}
