// Package metrics exposes votewatch's Prometheus metrics: the projector's
// batches and counters, the Watermill router, the projection's state
// (read from the database at scrape time, so every process reports the same
// exact figures) and HTTP request latencies.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	wmmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/projections/write"
)

const namespace = "votewatch"

// Metrics is one process's registry. Create one per process with New.
type Metrics struct {
	reg          *prometheus.Registry
	batchSize    *prometheus.HistogramVec
	applySeconds *prometheus.HistogramVec
	httpSeconds  *prometheus.HistogramVec
}

// New returns a registry with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "projector", Name: "batch_size",
			Help:    "Events applied per group-commit transaction.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000},
		}, []string{"batcher"}),
		applySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "projector", Name: "apply_seconds",
			Help:    "Time to apply and commit one batch, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"batcher", "outcome"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP requests by route pattern, method and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"route", "method", "code"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.batchSize, m.applySeconds, m.httpSeconds)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveBatch records one projector batch (write.BatcherConfig's
// Observe hook).
func (m *Metrics) ObserveBatch(batcher string, size int, took time.Duration, err error) {
	outcome := "committed"
	if err != nil {
		outcome = "failed"
	}
	m.batchSize.WithLabelValues(batcher).Observe(float64(size))
	m.applySeconds.WithLabelValues(batcher, outcome).Observe(took.Seconds())
}

// Router adds Watermill's metrics to a router: messages received per topic
// and handler execution time per handler, dead-letter publishes included.
// Call before adding handlers.
func (m *Metrics) Router(r *message.Router) {
	wmmetrics.NewPrometheusMetricsBuilder(m.reg, namespace, "watermill").AddPrometheusRouterMetrics(r)
}

// Projector exports the projector's counters since this process started.
func (m *Metrics) Projector(stats func() write.ProjectorStats) {
	counter := func(name, help string, v func(write.ProjectorStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: "projector", Name: name, Help: help},
			func() float64 { return float64(v(stats())) })
	}
	m.reg.MustRegister(
		counter("votes_accepted_total", "Votes this process counted.", func(s write.ProjectorStats) int64 { return s.VotesAccepted }),
		counter("votes_rejected_total", "Votes this process rejected (redeliveries of a rejection included).", func(s write.ProjectorStats) int64 { return s.VotesRejected }),
		counter("votes_held_total", "Votes this process held until their voter's or candidate's registration (or registration's close).", func(s write.ProjectorStats) int64 { return s.VotesHeld }),
		counter("vote_batches_total", "Vote batches this process committed.", func(s write.ProjectorStats) int64 { return s.VoteBatches }),
		counter("dead_lettered_total", "Messages this process sent to a dead-letter topic.", func(s write.ProjectorStats) int64 { return s.DeadLettered }),
	)
}

// StatusFunc reads the projection's state (read.Results.Status with
// the log's ends).
type StatusFunc func(ctx context.Context) (read.Status, error)

// Projection exports the projection's state, read at scrape time: totals,
// rejections by reason, consumer lag per partition and freshness.
func (m *Metrics) Projection(status StatusFunc) {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	m.reg.MustRegister(&projectionCollector{
		status:    status,
		votesCast: desc("projection_votes_cast", "Votes counted in the projection."),
		rejected:  desc("projection_rejections", "Votes rejected, by reason.", "reason"),
		dead:      desc("projection_dead_lettered", "Messages dead-lettered."),
		applied:   desc("projection_events_applied", "Events applied, by topic (next offsets summed over partitions).", "topic"),
		lag:       desc("consumer_lag", "Events in the log not yet applied, by partition.", "topic", "partition"),
		offset:    desc("projection_applied_offset", "The next offset to apply, by partition: for operators only (the public status has no partition's figures).", "topic", "partition"),
		staleness: desc("projection_staleness_seconds", "Now minus the newest applied event time (freshness)."),
		up:        desc("projection_up", "1 if the projection's state could be read at this scrape."),
		logUp:     desc("log_reachable", "1 if the Kafka log's ends could be read (lag is known)."),
		held:      desc("projection_held_votes", "Votes held until their voter's or candidate's registration, or registration's close."),
		refused:   desc("projection_refused_registrations", "Registrations refused for coming after their partition's close marker."),
		closed:    desc("projection_registration_closed", "1 once registration is closed on every partition."),
		stations:  desc("projection_station_votes", "Decided votes per station and outcome (counted, or the rejection reason).", "station", "outcome"),
	})
}

// projectionCollector reads the projection's state from the database on
// every scrape, so the figures are the committed ones, whichever process
// committed them.
type projectionCollector struct {
	status                                                        StatusFunc
	votesCast, rejected, dead, applied, lag, staleness, up, logUp *prometheus.Desc
	held, refused, closed, stations, offset                       *prometheus.Desc
}

func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.votesCast, c.rejected, c.dead, c.applied, c.lag, c.staleness, c.up, c.logUp, c.held, c.refused, c.closed, c.stations, c.offset} {
		ch <- d
	}
}

func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st, err := c.status(ctx)
	if err != nil {
		gauge(c.up, 0)
		return
	}
	gauge(c.up, 1)
	gauge(c.votesCast, float64(st.VotesCast))
	gauge(c.dead, float64(st.DeadLettered))
	gauge(c.staleness, st.Staleness.Seconds())
	gauge(c.held, float64(st.Registration.HeldVotes))
	gauge(c.refused, float64(st.Registration.Refused))
	closed := 0.0
	if st.Registration.Closed {
		closed = 1
	}
	gauge(c.closed, closed)
	for station, outcomes := range st.Stations {
		for outcome, n := range outcomes {
			gauge(c.stations, float64(n), station, outcome)
		}
	}
	for reason, n := range st.Rejected {
		gauge(c.rejected, float64(n), reason)
	}
	for topic, n := range st.EventsApplied {
		gauge(c.applied, float64(n), topic)
	}
	for _, p := range st.Partitions {
		gauge(c.offset, float64(p.Applied), p.Topic, strconv.Itoa(int(p.Partition)))
	}
	if !st.LogReachable {
		gauge(c.logUp, 0)
		return
	}
	gauge(c.logUp, 1)
	for _, p := range st.Partitions {
		gauge(c.lag, float64(p.Lag), p.Topic, strconv.Itoa(int(p.Partition)))
	}
}

// Outbox exports the intake's backlog: votes accepted but not yet relayed
// to Kafka, and how long the oldest has waited (one query per scrape).
func (m *Metrics) Outbox(backlog func(ctx context.Context) (int64, time.Duration, error)) {
	m.reg.MustRegister(&outboxCollector{
		backlog: backlog,
		pending: prometheus.NewDesc(namespace+"_outbox_pending", "Votes accepted by the intake API and not yet relayed to Kafka.", nil, nil),
		oldest:  prometheus.NewDesc(namespace+"_outbox_oldest_seconds", "How long the oldest vote waiting in the outbox has waited.", nil, nil),
	})
}

type outboxCollector struct {
	backlog         func(ctx context.Context) (int64, time.Duration, error)
	pending, oldest *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pending; ch <- c.oldest }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, age, err := c.backlog(ctx)
	if err != nil {
		return // the database is unreachable: projection_up says so; the scrape goes on
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age.Seconds())
}

// Readiness exports votewatch_ready: 1 while ready (the same check as
// /readyz) answers nil at scrape time, 0 otherwise. A scrape that cannot
// reach the process at all shows as Prometheus's own up == 0.
func (m *Metrics) Readiness(ready func(ctx context.Context) error) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "ready",
		Help: "1 if this process is ready to serve (database reachable and migrated), checked at scrape time.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if ready(ctx) != nil {
			return 0
		}
		return 1
	}))
}

// Intake counts the polling stations' requests by station and HTTP status,
// and their votes by station and outcome. The event on the log carries no
// station, so this is the only per-station view of refusals; station is a
// configured name, never request input ("unauthenticated" when no known
// token was presented), which keeps the label set bounded by the tokens
// file.
type Intake struct {
	requests *prometheus.CounterVec
	votes    *prometheus.CounterVec
}

// Unauthenticated is the station label of requests without a known token.
const Unauthenticated = "unauthenticated"

// Intake registers the intake's counters; hand its methods to
// handlers.IntakeConfig. The stations' vote counters start at zero, so a
// station's first votes show as an increase.
func (m *Metrics) Intake(stations ...string) *Intake {
	in := &Intake{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "intake", Name: "requests_total",
			Help: "Intake API requests by station and HTTP status code.",
		}, []string{"station", "code"}),
		votes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "intake", Name: "votes_total",
			Help: "Votes the intake API stored, by station and outcome (accepted, or duplicate for a retry).",
		}, []string{"station", "outcome"}),
	}
	m.reg.MustRegister(in.requests, in.votes)
	for _, s := range stations {
		in.ObserveVotes(s, 0, 0)
	}
	return in
}

// ObserveRequest counts one request answered with status.
func (in *Intake) ObserveRequest(station string, status int) {
	if station == "" {
		station = Unauthenticated
	}
	in.requests.WithLabelValues(station, strconv.Itoa(status)).Inc()
}

// ObserveVotes counts the votes of one stored request.
func (in *Intake) ObserveVotes(station string, accepted, duplicates int) {
	in.votes.WithLabelValues(station, "accepted").Add(float64(accepted))
	in.votes.WithLabelValues(station, "duplicate").Add(float64(duplicates))
}

// InstrumentHTTP records each request's duration by the route pattern
// that served it (never the raw path: ids in paths would explode the label
// set).
func (m *Metrics) InstrumentHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern // set by ServeMux on this request
		if route == "" {
			route = "unmatched"
		}
		m.httpSeconds.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}

// methodLabel is the method as a label: a client chooses the method freely,
// so every method outside the standard ones is one label, OTHER, or a
// client could grow the label set without bound.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush keeps Server-Sent Events streaming through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ContestsFunc reads every contest's results (read.Results.Contests).
type ContestsFunc func(ctx context.Context) ([]read.ContestResult, error)

// Contests exports each contest's votes cast, eligible voters, whether it
// is decided, and its stations reporting, read at scrape time.
func (m *Metrics) Contests(contests ContestsFunc) {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_contest_"+name, help, []string{"contest"}, nil)
	}
	m.reg.MustRegister(&contestCollector{
		contests: contests,
		cast:     desc("votes_cast", "Votes counted in the contest."),
		eligible: desc("eligible_voters", "Voters registered in the contest's regions."),
		decided:  desc("decided", "1 once the contest is mathematically certain (not a race call)."),
		stations: desc("stations", "Polling stations in the contest's regions."),
		closed:   desc("stations_closed", "Polling stations in the contest's regions that reported closing."),
	})
}

type contestCollector struct {
	contests                                  ContestsFunc
	cast, eligible, decided, stations, closed *prometheus.Desc
}

func (c *contestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cast, c.eligible, c.decided, c.stations, c.closed} {
		ch <- d
	}
}

func (c *contestCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := c.contests(ctx)
	if err != nil {
		return // votewatch_projection_up already says the projection is unreadable
	}
	for _, k := range all {
		decided := 0.0
		if k.Decided {
			decided = 1
		}
		for d, v := range map[*prometheus.Desc]float64{c.cast: float64(k.VotesCast), c.eligible: float64(k.EligibleVoters),
			c.decided: decided, c.stations: float64(k.Stations), c.closed: float64(k.StationsClosed)} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, k.ContestID)
		}
	}
}

// Checkpointer exports the transparency log's witnessing: how long the
// tree has grown without a checkpoint reaching its witnesses' quorum
// (0 when the served checkpoint covers the whole tree), and the
// add-checkpoint requests per witness and outcome.
func (m *Metrics) Checkpointer(stats func() trees.CheckpointerStats) {
	m.reg.MustRegister(&checkpointerCollector{stats: stats,
		unwitnessed: prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "unwitnessed_seconds"),
			"Seconds since the oldest checkpoint signed and not yet cosigned by the witnesses' quorum (0: none waiting).", nil, nil),
		requests: prometheus.NewDesc(prometheus.BuildFQName(namespace, "log", "witness_requests_total"),
			"add-checkpoint requests to each witness, by outcome (ok, conflict, refused, error).", []string{"witness", "outcome"}, nil),
	})
}

type checkpointerCollector struct {
	stats                 func() trees.CheckpointerStats
	unwitnessed, requests *prometheus.Desc
}

func (c *checkpointerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.unwitnessed
	ch <- c.requests
}

func (c *checkpointerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	var age float64
	if !s.PendingSince.IsZero() {
		age = time.Since(s.PendingSince).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.unwitnessed, prometheus.GaugeValue, age)
	for k, n := range s.WitnessRequests {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), k[0], k[1])
	}
}
