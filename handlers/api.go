package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
)

// ReadinessFunc reports why the service cannot serve yet (nil when ready).
type ReadinessFunc func(ctx context.Context) error

// API serves the read API. Its responses are aggregates only: no route
// links a voter to a candidate.
type API struct {
	results *read.Results
	ready   ReadinessFunc
	logEnds projections.HighWatermarksFunc
	log     *slog.Logger
	snaps   *Snapshots
	openapi []byte
	// lookups limits ballot lookups per client address.
	lookups *addressLimiter
	clients clientKeys
}

// TrustProxies makes the per-address limits believe the X-Forwarded-For
// of requests from these proxies (a load balancer, a CDN): behind them,
// every client would otherwise share the proxy's budget. Call before
// serving.
func (a *API) TrustProxies(proxies []netip.Prefix) { a.clients = clientKeys{trusted: proxies} }

// ServeFromSnapshots makes the dashboard, summary, candidates and regions
// routes answer from snaps (at most its poll interval old) instead of
// reading the projection per request. Call before serving.
func (a *API) ServeFromSnapshots(snaps *Snapshots) { a.snaps = snaps }

// fromSnapshot answers with the part of one snapshot that pick chooses (nil:
// not there, a 404), with an ETag naming the snapshot's content, so clients
// and CDNs can revalidate cheaply. The snapshot is the cache's; before the
// cache has one, or without a cache, one is read for this request.
func (a *API) fromSnapshot(w http.ResponseWriter, r *http.Request, pick func(*snapshot) []byte) {
	var snap *snapshot
	if a.snaps != nil {
		snap = a.snaps.current()
	}
	if snap == nil {
		var err error
		if snap, err = buildSnapshot(r.Context(), a.results); err != nil {
			writeError(w, r, a.log, err)
			return
		}
	}
	body := pick(snap)
	if body == nil {
		writeError(w, r, a.log, projections.ErrNotFound)
		return
	}
	h := w.Header()
	h.Set("ETag", snap.etag)
	h.Set("Cache-Control", "public, max-age=1")
	h.Set("X-Content-Type-Options", "nosniff")
	if match := r.Header.Get("If-None-Match"); match != "" && match == snap.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(body)
}

// NewAPI returns the read API over results. logEnds reads the log's ends
// for the status route's lag; it may be nil (lag is then reported unknown).
func NewAPI(results *read.Results, ready ReadinessFunc, logEnds projections.HighWatermarksFunc, log *slog.Logger) (*API, error) {
	if results == nil || ready == nil || log == nil {
		return nil, errors.New("new api: nil results, readiness or logger")
	}
	doc, err := OpenAPIJSON()
	if err != nil {
		return nil, fmt.Errorf("new api: %w", err)
	}
	return &API{results: results, ready: ready, logEnds: logEnds, log: log, openapi: doc,
		lookups: newAddressLimiter(ballotLookupRate, ballotLookupBurst)}, nil
}

// Mux is what routes are registered on: an *http.ServeMux, or a recorder
// that also lists them (every route must be in the OpenAPI document, and a
// test checks that from the registrations themselves).
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the API's routes to mux.
func (a *API) Register(mux Mux) {
	mux.HandleFunc("/api/v1/summary", a.onlyGET(a.summary))
	mux.HandleFunc("/api/v1/candidates", a.onlyGET(a.candidates))
	mux.HandleFunc("/api/v1/regions", a.onlyGET(a.regions))
	mux.HandleFunc("/api/v1/regions/{region}", a.onlyGET(a.region))
	mux.HandleFunc("/api/v1/dashboard", a.onlyGET(a.dashboard))
	mux.HandleFunc("/api/v1/status", a.onlyGET(a.status))
	mux.HandleFunc("/api/v1/timeline", a.onlyGET(a.timeline))
	mux.HandleFunc("/api/v1/results.csv", a.onlyGET(a.resultsCSV))
	mux.HandleFunc("/api/v1/results.cdf.json", a.onlyGET(a.resultsCDF))
	mux.HandleFunc("/api/v1/contests", a.onlyGET(a.contests))
	mux.HandleFunc("/api/v1/ballots/{vote_id}", a.onlyGET(a.ballot))
	mux.HandleFunc("/api/v1/audit", a.onlyGET(a.operatorLog))
	mux.HandleFunc("/api/v1/stations", a.onlyGET(a.canvass))
	mux.HandleFunc("/api/v1/checkpoint", a.onlyGET(a.checkpoint))
	mux.HandleFunc("/api/v1/checkpoint/key", a.onlyGET(a.checkpointKey))
	mux.HandleFunc("/api/v1/checkpoints", a.onlyGET(a.checkpointsRetired))
	mux.HandleFunc("/log/checkpoint", a.onlyGET(a.checkpoint))
	mux.HandleFunc("/log/tile/", a.onlyGET(a.tile))
	mux.HandleFunc("/api/v1/contests/{contest}", a.onlyGET(a.contest))
	mux.HandleFunc(OpenAPIPath, a.onlyGET(a.openAPI))
	RegisterProbes(mux, a.ready, a.log)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.log, &httpError{status: http.StatusNotFound, code: "not_found", message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
}

// onlyGET answers other methods with a JSON 405 (the mux's own is text).
func (a *API) onlyGET(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, a.log, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: r.Method + " is not allowed here; use GET"})
			return
		}
		h(w, r)
	}
}

type leaderJSON struct {
	CandidateID string `json:"candidate_id"`
	Name        string `json:"name"`
	Party       string `json:"party"`
	Votes       int64  `json:"votes"`
}

type summaryJSON struct {
	RegisteredVoters int64            `json:"registered_voters"`
	Candidates       int64            `json:"candidates"`
	VotesCast        int64            `json:"votes_cast"`
	Turnout          float64          `json:"turnout"`
	Rejected         map[string]int64 `json:"rejected"`
	DeadLettered     int64            `json:"dead_lettered"`
	Leader           *leaderJSON      `json:"leader"`
	UpdatedAt        *time.Time       `json:"updated_at"`
	Contests         int64            `json:"contests"`
}

func (a *API) summary(w http.ResponseWriter, r *http.Request) {
	if allowQuery(w, r, a.log) {
		a.fromSnapshot(w, r, func(s *snapshot) []byte { return s.summary })
	}
}

type candidateJSON struct {
	CandidateID string  `json:"candidate_id"`
	Name        string  `json:"name"`
	Party       string  `json:"party"`
	Votes       int64   `json:"votes"`
	Share       float64 `json:"share"`
}

func (a *API) candidates(w http.ResponseWriter, r *http.Request) {
	if allowQuery(w, r, a.log) {
		a.fromSnapshot(w, r, func(s *snapshot) []byte { return s.candidates })
	}
}

type tallyJSON struct {
	CandidateID string `json:"candidate_id"`
	Votes       int64  `json:"votes"`
}

type regionJSON struct {
	Region            string      `json:"region"`
	RegisteredVoters  int64       `json:"registered_voters"`
	VotesCast         int64       `json:"votes_cast"`
	Turnout           float64     `json:"turnout"`
	LeaderCandidateID *string     `json:"leader_candidate_id"`
	Tallies           []tallyJSON `json:"tallies"`
	// Withheld appears only when set, so contract v1's region keeps
	// its shape for every region that is shown.
	Withheld bool `json:"withheld,omitempty"`
}

func toRegionJSON(g read.RegionResult) regionJSON {
	out := regionJSON{Region: g.Region, RegisteredVoters: g.RegisteredVoters, VotesCast: g.VotesCast, Turnout: g.Turnout,
		Tallies: make([]tallyJSON, 0, len(g.Tallies)), Withheld: g.Withheld}
	if g.LeaderCandidateID != "" {
		out.LeaderCandidateID = &g.LeaderCandidateID
	}
	for _, t := range g.Tallies {
		out.Tallies = append(out.Tallies, tallyJSON{t.CandidateID, t.Votes})
	}
	return out
}

func (a *API) regions(w http.ResponseWriter, r *http.Request) {
	if allowQuery(w, r, a.log) {
		a.fromSnapshot(w, r, func(s *snapshot) []byte { return s.regions })
	}
}

func (a *API) region(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	name, err := domain.NewRegion(r.PathValue("region"))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.fromSnapshot(w, r, func(s *snapshot) []byte { return s.region[name.String()] })
}

// RegisterProbes adds /healthz (the process answers) and /readyz (ready
// says it can do its work: 503 otherwise, the reason logged, not sent) to
// mux.
func RegisterProbes(mux Mux, ready ReadinessFunc, log *slog.Logger) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, log, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeError(w, r, log, &httpError{status: http.StatusServiceUnavailable, code: "not_ready", message: "not ready", cause: err})
			return
		}
		writeJSON(w, r, log, map[string]string{"status": "ready"})
	})
}

// allowQuery refuses query parameters other than allowed, naming the
// first, so a typo is reported rather than silently ignored.
func allowQuery(w http.ResponseWriter, r *http.Request, log *slog.Logger, allowed ...string) bool {
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		if !slices.Contains(allowed, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return true
	}
	slices.Sort(keys)
	writeError(w, r, log, &domain.ValidationError{Field: keys[0], Problem: "unknown query parameter"})
	return false
}

func writeJSON(w http.ResponseWriter, r *http.Request, log *slog.Logger, v any) {
	writeJSONStatus(w, r, log, http.StatusOK, v)
}

func writeJSONStatus(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Debug("write response", "path", r.URL.Path, "err", err)
	}
}
