// Package app wires votewatch's parts into a running process: it opens
// every resource a command needs (the database, the broker and its
// clients, the projector, the HTTP servers, the outbox relay, the
// simulator), runs the long-lived ones, and closes everything in the
// reverse order of opening.
//
// The shape follows the anchors in ../shared/STYLE.md: wtf's cmd/wtfd
// Main (open in one place, Run, then Close whatever was opened, also after
// a failed start-up) and wild-workouts' service.NewApplication /
// NewComponentTestApplication (the same wiring serves the binary and the
// tests). Commands in cmd/votewatch parse flags and call into App; the
// system tests in systemtest/ build their systems from the same pieces.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
)

// App is one votewatch process's resources and services. Open what the
// command needs, register the services, call Run, and always Close: Close
// releases everything opened so far, in reverse order, so a start-up that
// fails half-way leaks nothing.
type App struct {
	Log     *slog.Logger
	Metrics *metrics.Metrics

	// Pool is the database, once OpenDatabase or OpenAdminDatabase ran.
	Pool *pgxpool.Pool
	// Kafka and KafkaLog reach the broker, once OpenKafka or OpenLog ran.
	Kafka    kafka.Config
	KafkaLog *kafka.Log
	// TLS, when set, is what ServeAPI and ServeIntake serve their public
	// listeners with (infra/certs); nil serves plain HTTP, as the demo does
	// on 127.0.0.1. The ops listener (ServeOps) stays plain: it is for the
	// operators' network only.
	TLS *tls.Config
	// MinCell is the disclosure rule's k for the read API (0:
	// domain.DefaultMinCell); set it before ServeAPI.
	MinCell int
	// TrustedProxies are the proxies whose X-Forwarded-For the HTTP
	// servers' per-address limits believe (handlers.ParseTrustedProxies);
	// set it before ServeAPI, StartIntake or ServeIntake.
	TrustedProxies []netip.Prefix
	// Sealing holds the election's secrecy keys, once UseSealing ran: its
	// Opener decodes votes for the projector, replay and audit.
	Sealing Sealing

	mu       sync.Mutex
	closers  []func()
	services []func(context.Context) error
	running  bool
}

// New returns an App that has opened nothing yet.
func New(log *slog.Logger) *App {
	return &App{Log: log, Metrics: metrics.New()}
}

// OnClose registers f to run at Close, before everything registered
// earlier.
func (a *App) OnClose(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closers = append(a.closers, f)
}

// Close releases every resource in the reverse order of opening. It is
// safe to call more than once; only the first call releases anything.
func (a *App) Close() {
	a.mu.Lock()
	cs := a.closers
	a.closers = nil
	a.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// Go registers a service that Run runs until its context ends.
func (a *App) Go(run func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.services = append(a.services, run)
}

// Run runs every registered service until ctx ends or one of them fails
// (which stops the others), and returns only once all of them have ended:
// nothing Close releases is then still in use.
func (a *App) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("app: Run called twice")
	}
	a.running = true
	services := a.services
	a.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range services {
		g.Go(func() error { return run(gctx) })
	}
	return g.Wait()
}

// StartBroker starts the embedded broker, closed at Close.
func (a *App) StartBroker(cfg kafka.BrokerConfig) (*kafka.Broker, error) {
	broker, err := kafka.StartBroker(cfg, a.Log)
	if err != nil {
		return nil, err
	}
	a.OnClose(broker.Close)
	return broker, nil
}

// DatabaseConfig locates PostgreSQL.
type DatabaseConfig struct {
	// URL is the database; empty starts a private cluster in PrivateDir.
	URL        string
	MaxConns   int32
	PrivateDir string
}

// OpenDatabase connects Pool to cfg.URL or, when it is empty and
// cfg.PrivateDir is set, to a private cluster started there. It returns
// where it connected (for people, without the password).
func (a *App) OpenDatabase(ctx context.Context, cfg DatabaseConfig) (string, error) {
	dsn, where := cfg.URL, "DATABASE_URL"
	if dsn == "" {
		if cfg.PrivateDir == "" {
			return "", errors.New("DATABASE_URL is not set")
		}
		start := time.Now()
		cluster, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: cfg.PrivateDir, Logger: a.Log})
		if err != nil {
			return "", err
		}
		a.OnClose(func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := cluster.Stop(stopCtx); err != nil {
				a.Log.Error("stop private PostgreSQL", "err", err)
			}
		})
		dsn = cluster.DSN()
		where = fmt.Sprintf("private cluster at 127.0.0.1:%d (data in %s)", cluster.Port(), cfg.PrivateDir)
		a.Log.Info("private PostgreSQL ready", "port", cluster.Port(), "took", time.Since(start).Round(time.Millisecond))
	}
	pool, err := postgres.Connect(ctx, dsn, cfg.MaxConns)
	if err != nil {
		return "", err
	}
	a.OnClose(pool.Close)
	a.Pool = pool
	return where, nil
}

// Migrate applies the migrations to Pool.
func (a *App) Migrate(ctx context.Context) error { return Migrate(ctx, a.Log, a.Pool) }

// OpenKafka creates the event topics that are missing and opens KafkaLog
// for log positions.
func (a *App) OpenKafka(ctx context.Context, kcfg kafka.Config) error {
	if err := kafka.EnsureTopics(ctx, kcfg, kafka.EventTopics(kcfg.Partitions)); err != nil {
		return err
	}
	// Topics created elsewhere may let the broker delete the election:
	// say so loudly (audit and replay refuse a log that lost its start).
	problems, err := kafka.RetentionProblems(ctx, kcfg, domain.EventTopics)
	if err != nil {
		a.Log.Warn("could not read the topics' retention settings", "err", err)
	}
	for _, p := range problems {
		a.Log.Error("THE EVENT LOG IS NOT KEPT FOREVER: set retention.ms=-1, retention.bytes=-1 and cleanup.policy=delete on this topic", "problem", p)
	}
	return a.OpenLog(kcfg)
}

// OpenLog opens KafkaLog on kcfg without touching the topics, for the
// maintenance commands that only read.
func (a *App) OpenLog(kcfg kafka.Config) error {
	klog, err := kafka.NewLog(kcfg)
	if err != nil {
		return err
	}
	a.OnClose(func() { _ = klog.Close() })
	a.Kafka, a.KafkaLog = kcfg, klog
	return nil
}

// OpenPublisher opens a publisher to Kafka, closed at Close.
func (a *App) OpenPublisher() (*kafka.Publisher, error) {
	pub, err := kafka.NewPublisher(a.Kafka)
	if err != nil {
		return nil, err
	}
	a.OnClose(func() { _ = pub.Close() })
	return pub, nil
}

// Migrate applies the migrations to pool.
func Migrate(ctx context.Context, log *slog.Logger, pool *pgxpool.Pool) error {
	m, err := postgres.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	n, err := m.Up(ctx)
	if err != nil {
		return err
	}
	log.Info("database migrated", "applied", n)
	return nil
}

// watermillLogger adapts log for Watermill, whose info lines (one per
// subscription and reconnect) are our debug.
func watermillLogger(log *slog.Logger, component string) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(log.With("component", component), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
}

// StartProjector builds the projector on Pool and KafkaLog and runs it in
// Run.
func (a *App) StartProjector(cfg ProjectorConfig) (*ProjectorService, error) {
	if cfg.Opener == nil {
		cfg.Opener = a.Sealing.Opener
	}
	proj, err := NewProjectorService(a.Log, a.Pool, a.Kafka, cfg, a.KafkaLog, a.Metrics)
	if err != nil {
		return nil, err
	}
	a.OnClose(proj.Close)
	a.Go(proj.Run)
	return proj, nil
}

// ObserveProjection reports the projection's state in Metrics, for a
// process without the read API (whose server reports it).
func (a *App) ObserveProjection() error {
	results, err := read.NewResults(a.Pool)
	if err != nil {
		return err
	}
	a.Metrics.Projection(ProjectionStatus(results, a.KafkaLog.HighWatermarks))
	return nil
}

// ServeAPI serves the read API and the dashboard (and intake's API, unless
// nil) on addr in Run.
func (a *App) ServeAPI(addr string, intake *Intake) (*HTTPServer, error) {
	var ends projections.HighWatermarksFunc
	if a.KafkaLog != nil {
		ends = a.KafkaLog.HighWatermarks
	}
	return a.serve(withTLS(a.TLS)(newAPIServer(a.Log, addr, a.Pool, ends, a.Metrics, intake, a.MinCell, a.TrustedProxies)))
}

// ServeIntake serves the intake API alone on addr in Run.
func (a *App) ServeIntake(addr string, intake *Intake) (*HTTPServer, error) {
	return a.serve(withTLS(a.TLS)(NewIntakeServer(a.Log, addr, a.Pool, a.Metrics, intake)))
}

// withTLS makes a new server serve TLS with cfg (nil: leaves it plain).
func withTLS(cfg *tls.Config) func(*HTTPServer, error) (*HTTPServer, error) {
	return func(srv *HTTPServer, err error) (*HTTPServer, error) {
		if err == nil && cfg != nil {
			srv.UseTLS(cfg)
		}
		return srv, err
	}
}

// ServeOps serves /metrics, /healthz and /readyz on addr in Run; an empty
// addr serves nothing (and returns nil).
func (a *App) ServeOps(addr string) (*HTTPServer, error) {
	if addr == "" {
		return nil, nil
	}
	ops, err := a.serve(NewOpsServer(a.Log, addr, a.Pool, a.Metrics))
	if err != nil {
		return nil, err
	}
	a.Log.Info("metrics served", "addr", "http://"+ops.Addr()+"/metrics")
	return ops, nil
}

func (a *App) serve(srv *HTTPServer, err error) (*HTTPServer, error) {
	if err != nil {
		return nil, err
	}
	a.OnClose(srv.Close)
	a.Go(srv.Run)
	return srv, nil
}

// ProjectionStatus reports the projection's state for the metrics.
func ProjectionStatus(results *read.Results, logEnds projections.HighWatermarksFunc) metrics.StatusFunc {
	return func(ctx context.Context) (read.Status, error) { return results.Status(ctx, logEnds) }
}

// HTTPServer serves the API, the dashboard and its live stream, with
// timeouts set against slow clients.
type HTTPServer struct {
	log    *slog.Logger
	ln     net.Listener
	scheme string
	srv    *http.Server
	snaps  *handlers.Snapshots // ends the live streams when its Run returns
}

// NewAPIServer listens on addr for the read API and the dashboard, and the
// intake's API unless intake is nil. Everything it publishes is read
// through read.NewPublicResults under a minimum cell size of
// minCell (0: domain.DefaultMinCell), the projectors' releasers' k.
func NewAPIServer(log *slog.Logger, addr string, pool *pgxpool.Pool, logEnds projections.HighWatermarksFunc, m *metrics.Metrics, intake *Intake, minCell int) (*HTTPServer, error) {
	return newAPIServer(log, addr, pool, logEnds, m, intake, minCell, nil)
}

func newAPIServer(log *slog.Logger, addr string, pool *pgxpool.Pool, logEnds projections.HighWatermarksFunc, m *metrics.Metrics, intake *Intake, minCell int, trusted []netip.Prefix) (*HTTPServer, error) {
	rule, err := DisclosureRule(minCell)
	if err != nil {
		return nil, err
	}
	results, err := read.NewPublicResults(pool, rule)
	if err != nil {
		return nil, err
	}
	// The status route and its metrics are for operators and read the
	// projection itself (lag, offsets), not its tallies.
	exact, err := read.NewResults(pool)
	if err != nil {
		return nil, err
	}
	ready, err := readiness(pool)
	if err != nil {
		return nil, err
	}
	m.Projection(ProjectionStatus(exact, logEnds))
	m.Contests(results.Contests)
	m.Readiness(ready)
	api, err := handlers.NewAPI(results, ready, logEnds, log)
	if err != nil {
		return nil, err
	}
	snaps, err := handlers.NewSnapshots(results, handlers.SnapshotConfig{}, log)
	if err != nil {
		return nil, err
	}
	stream, err := handlers.NewStream(snaps, handlers.StreamConfig{TrustedProxies: trusted}, log)
	if err != nil {
		return nil, err
	}
	api.ServeFromSnapshots(snaps)
	api.TrustProxies(trusted)
	mux := http.NewServeMux()
	api.Register(mux)
	handlers.RegisterDashboard(mux, stream)
	if intake != nil {
		intake.api.Register(mux)
		intake.registerTallyKey(mux, log)
	}
	// No /metrics here: this is the public listener (MetricsFlags).
	return listen(log, addr, m.InstrumentHTTP(mux), snaps)
}

// readiness reports whether the database is reachable and migrated.
func readiness(pool *pgxpool.Pool) (func(context.Context) error, error) {
	migrator, err := postgres.NewMigrator(pool)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("database unreachable: %w", err)
		}
		pending, err := migrator.Pending(ctx)
		if err != nil {
			return err
		}
		if pending {
			return errors.New("database migrations pending")
		}
		return nil
	}, nil
}

// NewOpsServer serves a process's /metrics, /healthz and /readyz on a
// listener of its own, apart from the public one (/readyz answers 503 while
// the database is unreachable or not migrated).
func NewOpsServer(log *slog.Logger, addr string, pool *pgxpool.Pool, m *metrics.Metrics) (*HTTPServer, error) {
	ready, err := readiness(pool)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	handlers.RegisterProbes(mux, ready, log)
	return listen(log, addr, m.InstrumentHTTP(mux), nil)
}

func listen(log *slog.Logger, addr string, h http.Handler, snaps *handlers.Snapshots) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &HTTPServer{log: log, ln: ln, scheme: "http", snaps: snaps, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// Addr returns the address the server listens on.
func (s *HTTPServer) Addr() string { return s.ln.Addr().String() }

// URL returns the server's base URL: https:// once UseTLS ran.
func (s *HTTPServer) URL() string { return s.scheme + "://" + s.Addr() }

// UseTLS makes the server, before it runs, accept TLS connections only,
// with cfg (infra/certs.Server.Config). A client speaking plain HTTP to it
// is answered 400 by net/http and served nothing.
func (s *HTTPServer) UseTLS(cfg *tls.Config) {
	cfg = cfg.Clone()
	// HTTP/1.1 only: the live stream and the intake need nothing more,
	// and a listener wrapped by hand gets no HTTP/2 set-up from net/http.
	cfg.NextProtos = []string{"http/1.1"}
	s.ln = tls.NewListener(s.ln, cfg)
	s.scheme = "https"
}

// Close releases the listener of a server that never ran (after Run it is
// closed already).
func (s *HTTPServer) Close() { _ = s.ln.Close() }

// Run serves until ctx ends, then ends the live streams and drains open
// requests.
func (s *HTTPServer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.snaps != nil {
		wg.Go(func() { s.snaps.Run(ctx) })
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
