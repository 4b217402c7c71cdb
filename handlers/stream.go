package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/votewatch/votewatch/projections"
)

// StreamConfig tunes the live stream.
type StreamConfig struct {
	// Poll is how often the projection's watermark is checked (default
	// 200ms): the bound on how stale a pushed page can be.
	Poll time.Duration
	// Heartbeat keeps idle connections open through proxies (default 15s).
	Heartbeat time.Duration
	// MaxClients caps concurrent subscribers (default 2000).
	MaxClients int
}

// Stream pushes the dashboard to browsers with Server-Sent Events. It reads
// the projection once per change, however many clients listen, and sends
// each the newest snapshot (a slow client skips to the latest rather than
// queueing old ones).
type Stream struct {
	cfg     StreamConfig
	results *projections.Results
	log     *slog.Logger

	mu      sync.Mutex
	clients map[chan []byte]struct{}
	latest  []byte
	done    chan struct{}
}

// NewStream returns a stream over results. Call Run.
func NewStream(results *projections.Results, cfg StreamConfig, log *slog.Logger) (*Stream, error) {
	if results == nil || log == nil {
		return nil, errors.New("new stream: nil results or logger")
	}
	if cfg.Poll == 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = 2000
	}
	return &Stream{cfg: cfg, results: results, log: log, clients: map[chan []byte]struct{}{}, done: make(chan struct{})}, nil
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
			if b, err := dashboardBytes(ctx, s.results); err == nil {
				seen = mark
				s.publish(b)
			} else if ctx.Err() == nil {
				s.log.Warn("live stream: read dashboard", "err", err)
			}
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

func (s *Stream) publish(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = b
	for ch := range s.clients {
		select { // keep only the newest snapshot per client
		case <-ch:
		default:
		}
		ch <- b
	}
}

func (s *Stream) subscribe() (chan []byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clients) >= s.cfg.MaxClients {
		return nil, false
	}
	ch := make(chan []byte, 1)
	if s.latest != nil {
		ch <- s.latest
	}
	s.clients[ch] = struct{}{}
	return ch, true
}

func (s *Stream) unsubscribe(ch chan []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, ch)
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
	ch, ok := s.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "5")
		writeError(w, r, s.log, &httpError{status: http.StatusServiceUnavailable, code: "too_many_streams", message: "too many live clients; poll /api/v1/dashboard instead"})
		return
	}
	defer s.unsubscribe(ch)
	rc := http.NewResponseController(w)
	// A stream outlives the server's write timeout by design.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case b := <-ch:
			if _, err := fmt.Fprintf(w, "event: dashboard\ndata: %s\n\n", b); err != nil {
				return
			}
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
