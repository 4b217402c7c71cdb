package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/votewatch/votewatch/projections"
)

// StreamConfig tunes the live stream.
type StreamConfig struct {
	// Poll is how often the projection's watermark is checked (default
	// 50ms): the bound on how stale a cached answer can be.
	Poll time.Duration
	// PushEvery is the least time between two pushes to browsers (default
	// 200ms), so a busy election does not flood them.
	PushEvery time.Duration
	// Heartbeat keeps idle connections open through proxies (default 15s).
	Heartbeat time.Duration
	// MaxClients caps concurrent subscribers (default 2000).
	MaxClients int
	// MaxPerAddress caps concurrent subscribers from one client address
	// (default 16), so one client cannot take every slot.
	MaxPerAddress int
	// WriteTimeout bounds the write of each event (default 10s): a client
	// that stops reading is dropped when it passes, instead of holding its
	// connection and slot for ever.
	WriteTimeout time.Duration
}

// Stream pushes the dashboard to browsers with Server-Sent Events. It reads
// the projection once per change, however many clients listen, and sends
// each the newest snapshot (a slow client skips to the latest rather than
// queueing old ones).
type Stream struct {
	cfg     StreamConfig
	results *projections.Results
	log     *slog.Logger

	mu       sync.Mutex
	clients  map[chan []byte]struct{}
	perAddr  map[string]int
	latest   []byte
	snap     *snapshot
	lastPush time.Time
	pending  bool // a snapshot not yet pushed to browsers
	done     chan struct{}
}

// snapshot is the read API's answers, encoded once per projection change
// and served to every reader from memory.
type snapshot struct {
	etag       string
	summary    []byte
	candidates []byte
	regions    []byte
	region     map[string][]byte
}

// NewStream returns a stream over results. Call Run.
func NewStream(results *projections.Results, cfg StreamConfig, log *slog.Logger) (*Stream, error) {
	if results == nil || log == nil {
		return nil, errors.New("new stream: nil results or logger")
	}
	if cfg.Poll == 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	if cfg.PushEvery == 0 {
		cfg.PushEvery = 200 * time.Millisecond
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = 2000
	}
	if cfg.MaxPerAddress == 0 {
		cfg.MaxPerAddress = 16
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	return &Stream{cfg: cfg, results: results, log: log, clients: map[chan []byte]struct{}{}, perAddr: map[string]int{}, done: make(chan struct{})}, nil
}

// Run watches the projection until ctx ends, then closes every stream.
func (s *Stream) Run(ctx context.Context) {
	defer close(s.done)
	ticker := time.NewTicker(s.cfg.Poll)
	defer ticker.Stop()
	var seen time.Time
	for {
		mark, err := s.results.Watermark(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("live stream: read watermark", "err", err)
		}
		if err == nil && (s.current() == nil || !mark.Equal(seen)) {
			if b, snap, err := s.build(ctx, mark); err == nil {
				seen = mark
				s.publish(b, snap)
			} else if ctx.Err() == nil {
				s.log.Warn("live stream: read dashboard", "err", err)
			}
		} else if s.pushDue() {
			s.push()
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (s *Stream) current() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

// build reads the projection once and encodes every cached answer.
func (s *Stream) build(ctx context.Context, mark time.Time) ([]byte, *snapshot, error) {
	d, err := s.results.Dashboard(ctx, dashboardOptions)
	if err != nil {
		return nil, nil, err
	}
	dj := toDashboardJSON(d, time.Now())
	snap := &snapshot{etag: fmt.Sprintf(`"%x"`, mark.UnixNano()), region: map[string][]byte{}}
	enc := func(v any) ([]byte, error) {
		b, err := json.Marshal(v)
		return append(b, '\n'), err
	}
	var errs [4]error
	snap.summary, errs[0] = enc(dj.Summary)
	snap.candidates, errs[1] = enc(map[string]any{"candidates": dj.Candidates})
	snap.regions, errs[2] = enc(map[string]any{"regions": dj.Regions})
	for _, g := range dj.Regions {
		snap.region[g.Region], _ = enc(g)
	}
	b, err := json.Marshal(dj)
	errs[3] = err
	if err := errors.Join(errs[:]...); err != nil {
		return nil, nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return b, snap, nil
}

func (s *Stream) publish(b []byte, snap *snapshot) {
	s.mu.Lock()
	s.latest, s.snap, s.pending = b, snap, true
	s.mu.Unlock()
	if s.pushDue() {
		s.push()
	}
}

func (s *Stream) pushDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending && time.Since(s.lastPush) >= s.cfg.PushEvery
}

// push sends the newest dashboard to every browser; a client still busy
// with the previous one gets only the newest.
func (s *Stream) push() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastPush, s.pending = time.Now(), false
	for ch := range s.clients {
		select {
		case <-ch:
		default:
		}
		ch <- s.latest
	}
}

// cached returns the current snapshot, or nil before the first one.
func (s *Stream) cached() *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// Clients returns how many browsers are subscribed now.
func (s *Stream) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

var (
	errTooManyStreams        = &httpError{status: http.StatusServiceUnavailable, code: "too_many_streams", message: "too many live clients; poll /api/v1/dashboard instead"}
	errTooManyStreamsPerAddr = &httpError{status: http.StatusTooManyRequests, code: "too_many_streams", message: "too many live streams from this address; close one or poll /api/v1/dashboard"}
)

func (s *Stream) subscribe(addr string) (chan []byte, *httpError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clients) >= s.cfg.MaxClients {
		return nil, errTooManyStreams
	}
	if s.perAddr[addr] >= s.cfg.MaxPerAddress {
		return nil, errTooManyStreamsPerAddr
	}
	ch := make(chan []byte, 1)
	if s.latest != nil {
		ch <- s.latest
	}
	s.clients[ch] = struct{}{}
	s.perAddr[addr]++
	return ch, nil
}

func (s *Stream) unsubscribe(ch chan []byte, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, ch)
	if s.perAddr[addr]--; s.perAddr[addr] <= 0 {
		delete(s.perAddr, addr)
	}
}

// clientAddr is the request's peer address without its port. Behind a
// reverse proxy every browser shares the proxy's: raise MaxPerAddress
// there, or cap per client at the proxy.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// ServeHTTP streams "dashboard" events, each the JSON of GET
// /api/v1/dashboard, starting with the current one. Browsers reconnect by
// themselves (EventSource), after the retry interval sent here.
func (s *Stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, r, s.log, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: r.Method + " is not allowed here; use GET"})
		return
	}
	if !allowQuery(w, r, s.log) {
		return
	}
	addr := clientAddr(r)
	ch, refused := s.subscribe(addr)
	if refused != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, r, s.log, refused)
		return
	}
	defer s.unsubscribe(ch, addr)
	rc := http.NewResponseController(w)
	// A stream outlives the server's write timeout by design; each write
	// gets a deadline of its own instead. Without one, a client that stops
	// reading would hold its goroutine, connection and slot for ever.
	send := func(event string) error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
			return err
		}
		if _, err := io.WriteString(w, event); err != nil {
			return err
		}
		return rc.Flush()
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := send("retry: 2000\n\n"); err != nil {
		return
	}
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case b := <-ch:
			err = send("event: dashboard\ndata: " + string(b) + "\n\n")
		case <-heartbeat.C:
			err = send(": heartbeat\n\n")
		}
		if err != nil {
			s.log.Debug("live stream: client dropped", "addr", addr, "err", err)
			return
		}
	}
}
