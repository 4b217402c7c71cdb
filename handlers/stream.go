package handlers

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// StreamConfig tunes the live stream.
type StreamConfig struct {
	// PushEvery is the least time between two pushes to a browser (default
	// 200ms), so a busy election does not flood it.
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
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client for MaxPerAddress (ParseTrustedProxies); without them every
	// browser behind a proxy or CDN shares its address.
	TrustedProxies []netip.Prefix
}

// Stream pushes the dashboard to browsers with Server-Sent Events. It only
// streams: the state it sends is Snapshots', read once per change however
// many clients listen. Each client gets the newest snapshot when it is
// ready for one, so a slow client skips to the latest rather than queueing
// old ones. Streams end when the snapshots' Run returns.
type Stream struct {
	cfg   StreamConfig
	snaps *Snapshots
	log   *slog.Logger

	mu      sync.Mutex
	clients int
	perAddr map[string]int
	keys    clientKeys
}

// NewStream returns a stream of snaps. Run snaps.
func NewStream(snaps *Snapshots, cfg StreamConfig, log *slog.Logger) (*Stream, error) {
	if snaps == nil || log == nil {
		return nil, errors.New("new stream: nil snapshots or logger")
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
	return &Stream{cfg: cfg, snaps: snaps, log: log, perAddr: map[string]int{}, keys: clientKeys{trusted: cfg.TrustedProxies}}, nil
}

// Clients returns how many browsers are subscribed now.
func (s *Stream) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients
}

var (
	errTooManyStreams        = &httpError{status: http.StatusServiceUnavailable, code: "too_many_streams", message: "too many live clients; poll /api/v1/dashboard instead"}
	errTooManyStreamsPerAddr = &httpError{status: http.StatusTooManyRequests, code: "too_many_streams", message: "too many live streams from this address; close one or poll /api/v1/dashboard"}
)

func (s *Stream) subscribe(addr string) *httpError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients >= s.cfg.MaxClients {
		return errTooManyStreams
	}
	if s.perAddr[addr] >= s.cfg.MaxPerAddress {
		return errTooManyStreamsPerAddr
	}
	s.clients++
	s.perAddr[addr]++
	return nil
}

func (s *Stream) unsubscribe(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients--
	if s.perAddr[addr]--; s.perAddr[addr] <= 0 {
		delete(s.perAddr, addr)
	}
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
	addr := s.keys.key(r)
	if refused := s.subscribe(addr); refused != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, r, s.log, refused)
		return
	}
	defer s.unsubscribe(addr)
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
	// due fires when the next push is allowed; nil while none is pending.
	var (
		sent    *snapshot
		due     <-chan time.Time
		lastAt  time.Time
		pending bool
	)
	for {
		snap, changed := s.snaps.watch()
		if snap != nil && snap != sent {
			pending = true
		}
		if pending && due == nil {
			if wait := s.cfg.PushEvery - time.Since(lastAt); wait > 0 {
				due = time.After(wait)
			} else {
				if err := send("event: dashboard\ndata: " + string(snap.dashboard[:len(snap.dashboard)-1]) + "\n\n"); err != nil {
					s.log.Debug("live stream: client dropped", "addr", addr, "err", err)
					return
				}
				sent, lastAt, pending = snap, time.Now(), false
				// A write can take long; what changed meanwhile is
				// picked up at the top of the loop.
				continue
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.snaps.done:
			return
		case <-changed:
		case <-due:
			due = nil
		case <-heartbeat.C:
			if err := send(": heartbeat\n\n"); err != nil {
				s.log.Debug("live stream: client dropped", "addr", addr, "err", err)
				return
			}
		}
	}
}
