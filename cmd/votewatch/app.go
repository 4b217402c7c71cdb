package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/projections"
)

// closers runs cleanups in reverse order of registration.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }
func (c *closers) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
}

// Run starts the embedded broker (unless KAFKA_BROKERS is set), the
// database, the projector, the API and the simulator, and stops them all,
// in reverse order, on Ctrl-C.
func (c *DemoCmd) Run(ctx context.Context, env *Env) error {
	log := env.Log
	var cleanup closers
	defer cleanup.run()

	dataDir := c.DataDir
	if dataDir == "" {
		var err error
		if dataDir, err = postgres.DefaultDir(); err != nil {
			return err
		}
	}
	if c.Fresh {
		if c.DatabaseURL != "" || len(c.KafkaBrokers) > 0 {
			return errors.New("--fresh discards the embedded broker's log and the private database; it does not touch DATABASE_URL or KAFKA_BROKERS")
		}
		log.Info("discarding the stored election", "dir", dataDir)
		for _, sub := range []string{"kafka", "postgres"} {
			if err := os.RemoveAll(filepath.Join(dataDir, sub)); err != nil {
				return fmt.Errorf("discard %s: %w", sub, err)
			}
		}
	}

	// Searchable by others: the private PostgreSQL runs as the postgres
	// user when votewatch runs as root. Its own directories stay private.
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	brokers := c.KafkaBrokers
	if len(brokers) == 0 {
		broker, err := kafka.StartBroker(kafka.BrokerConfig{
			Port: c.KafkaPort, DataDir: filepath.Join(dataDir, "kafka"), Partitions: int(c.Partitions),
		}, log)
		if err != nil {
			return fmt.Errorf("%w (is another votewatch demo running? choose another --kafka-port)", err)
		}
		cleanup.add(broker.Close)
		brokers = []string{broker.Addr()}
	}
	pool, dbWhere, err := openDatabase(ctx, log, c.DatabaseFlags, filepath.Join(dataDir, "postgres"), &cleanup)
	if err != nil {
		return err
	}
	if err := migrate(ctx, log, pool); err != nil {
		return err
	}
	kcfg, klog, err := openKafka(ctx, log, c.KafkaFlags, brokers, &cleanup)
	if err != nil {
		return err
	}

	m := metrics.New()
	c.ProjectorFlags.Transparency = c.ProjectorFlags.Transparency.demoDefaults(dataDir)
	proj, err := newProjectorService(log, pool, kcfg, c.ProjectorFlags, klog, m)
	if err != nil {
		return err
	}
	stations, err := c.stations()
	if err != nil {
		return err
	}
	// Configured tokens are secrets and are never printed; the demo's own
	// is, so the intake API can be tried at once.
	shownToken := "<your token>"
	if len(stations) == 0 {
		// The demo's station serves the election's first region: votes it
		// takes for voters elsewhere are rejected as wrong_station.
		cfg, err := simulator.LoadElection(c.Config)
		if err != nil {
			return err
		}
		region, err := domain.NewRegion(cfg.Regions[0].Name)
		if err != nil {
			return err
		}
		demo := demoStation(region)
		stations, shownToken = []handlers.Station{demo}, demo.Token
	}
	intake, err := newIntake(log, pool, kcfg, c.IntakeFlags, stations, m, &cleanup)
	if err != nil {
		return err
	}
	srv, err := newHTTPServer(log, c.HTTP, pool, klog.HighWatermarks, m, intake)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	if err := serveOps(gctx, g, log, c.MetricsAddr, pool, m); err != nil {
		return err
	}
	g.Go(func() error { return proj.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return intake.relay(gctx) })
	if c.Simulate {
		sim, closeSim, err := newSimulator(log, kcfg, c.SimulationFlags, klog)
		if err != nil {
			return err
		}
		cleanup.add(closeSim)
		g.Go(func() error { return sim.Run(gctx) })
	}

	fmt.Fprintf(env.Stdout, "\nvotewatch demo is running\n"+
		"  dashboard and API  http://%s/\n"+
		"  summary            http://%s/api/v1/summary\n"+
		"  Kafka bootstrap    %s  (topics candidates, voters, votes)\n"+
		"  PostgreSQL         %s\n"+
		"  intake API         POST http://%s/api/v1/votes  (station %s, region %s: Authorization: Bearer %s)\n"+
		"Press Ctrl-C to stop.\n\n", srv.Addr(), srv.Addr(), strings.Join(brokers, ","), dbWhere,
		srv.Addr(), stations[0].Name, stations[0].Region, shownToken)

	err = g.Wait()
	log.Info("stopping")
	return err
}

// openDatabase connects to DATABASE_URL or, when it is empty and privateDir
// is set, to a private cluster started there. It returns where it connected
// (for people, without the password).
func openDatabase(ctx context.Context, log *slog.Logger, f DatabaseFlags, privateDir string, cleanup *closers) (*pgxpool.Pool, string, error) {
	dsn, where := f.DatabaseURL, "DATABASE_URL"
	if dsn == "" {
		if privateDir == "" {
			return nil, "", errors.New("DATABASE_URL is not set")
		}
		start := time.Now()
		cluster, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: privateDir, Logger: log})
		if err != nil {
			return nil, "", err
		}
		cleanup.add(func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := cluster.Stop(stopCtx); err != nil {
				log.Error("stop private PostgreSQL", "err", err)
			}
		})
		dsn = cluster.DSN()
		where = fmt.Sprintf("private cluster at 127.0.0.1:%d (data in %s)", cluster.Port(), privateDir)
		log.Info("private PostgreSQL ready", "port", cluster.Port(), "took", time.Since(start).Round(time.Millisecond))
	}
	pool, err := postgres.Connect(ctx, dsn, f.DBMaxConns)
	if err != nil {
		return nil, "", err
	}
	cleanup.add(pool.Close)
	return pool, where, nil
}

// openKafka creates the event topics that are missing and opens a client
// for log positions.
func openKafka(ctx context.Context, log *slog.Logger, f KafkaFlags, brokers []string, cleanup *closers) (kafka.Config, *kafka.Log, error) {
	kcfg, err := f.kafkaConfig(brokers, f.Partitions)
	if err != nil {
		return kafka.Config{}, nil, err
	}
	if err := kafka.EnsureTopics(ctx, kcfg, kafka.EventTopics(f.Partitions)); err != nil {
		return kafka.Config{}, nil, err
	}
	// Topics created elsewhere may let the broker delete the election:
	// say so loudly (audit and replay refuse a log that lost its start).
	problems, err := kafka.RetentionProblems(ctx, kcfg, domain.EventTopics)
	if err != nil {
		log.Warn("could not read the topics' retention settings", "err", err)
	}
	for _, p := range problems {
		log.Error("THE EVENT LOG IS NOT KEPT FOREVER: set retention.ms=-1, retention.bytes=-1 and cleanup.policy=delete on this topic", "problem", p)
	}
	klog, err := kafka.NewLog(kcfg)
	if err != nil {
		return kafka.Config{}, nil, err
	}
	cleanup.add(func() { _ = klog.Close() })
	return kcfg, klog, nil
}

func migrate(ctx context.Context, log *slog.Logger, pool *pgxpool.Pool) error {
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

// projectorService is the live write path: a Watermill router with one
// consumer group per topic feeding the projector's group commits.
type projectorService struct {
	log          *slog.Logger
	router       *message.Router
	projector    *projections.Projector
	checkpointer *projections.Checkpointer // nil without a transparency log
	closers      closers
}

// watermillLogger adapts log for Watermill, whose info lines (one per
// subscription and reconnect) are our debug.
func watermillLogger(log *slog.Logger, component string) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(log.With("component", component), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
}

// The projector's Kafka consumers (--consumer): the pipelined subscriber
// (many messages of a partition in flight, never two of one key) and
// watermill-kafka's (one message per partition).
const (
	consumerPipelined      = "pipelined"
	consumerWatermillKafka = "watermill-kafka"
)

func newProjectorService(log *slog.Logger, pool *pgxpool.Pool, kcfg kafka.Config, f ProjectorFlags, klog *kafka.Log, m *metrics.Metrics) (*projectorService, error) {
	s := &projectorService{log: log}
	ok := false
	defer func() {
		if !ok {
			s.closers.run()
		}
	}()
	wlog := watermillLogger(log, "watermill")

	store, err := projections.NewStore(pool)
	if err != nil {
		return nil, err
	}
	if s.projector, err = projections.NewProjector(store, projections.ProjectorConfig{
		Votes:           projections.BatcherConfig{MaxBatch: f.BatchSize, Writers: f.Writers, Linger: f.Linger, Observe: m.ObserveBatch},
		Registrations:   projections.BatcherConfig{MaxBatch: 2000, Writers: 1, Observe: m.ObserveBatch},
		TopicPartitions: klog.Partitions,
	}, log); err != nil {
		return nil, err
	}
	m.Projector(s.projector.Stats)
	events, err := handlers.NewEventHandlers(s.projector, log)
	if err != nil {
		return nil, err
	}
	dlq, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return nil, err
	}
	s.closers.add(func() { _ = dlq.Close() })
	if s.checkpointer, err = newCheckpointer(log, pool, f.Transparency, replayLog{cfg: kcfg, log: klog}, dlq); err != nil {
		return nil, err
	}

	if f.Consumer == "" {
		f.Consumer = consumerPipelined
	}
	log.Info("projector consumer", "consumer", f.Consumer)
	subs := handlers.Subscribers{}
	for _, topic := range domain.EventTopics {
		// Each partition resumes where this database's projection stands,
		// not where the group last committed: the database may be newer
		// than the group (recreated, restored from a backup).
		sc := kafka.SubscriberConfig{
			Group: f.Group + "." + topic, SessionTimeout: f.SessionTimeout, Applied: store.AppliedOffsets,
		}
		var sub message.Subscriber
		if f.Consumer == consumerWatermillKafka {
			sub, err = kafka.NewSubscriber(kcfg, sc, wlog)
		} else {
			sub, err = kafka.NewPipelinedSubscriber(kcfg, kafka.PipelinedConfig{
				SubscriberConfig: sc, Annotate: handlers.ContextWithRecord,
			}, wlog)
		}
		if err != nil {
			return nil, err
		}
		s.closers.add(func() { _ = sub.Close() })
		subs[topic] = sub
	}
	if s.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wlog); err != nil {
		return nil, fmt.Errorf("new router: %w", err)
	}
	m.Router(s.router)
	if err := handlers.AddProjectionHandlers(s.router, subs, dlq, events, wlog); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Run consumes until ctx ends. Shutdown order matters: the router stops
// taking messages and waits for handlers in flight, whose batches the
// projector still commits; only then do the batchers stop.
func (s *projectorService) Run(ctx context.Context) error {
	defer s.closers.run()
	batchCtx, stopBatches := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { s.projector.Run(batchCtx) })
	// The checkpointer stops last, so that its final checkpoint covers
	// every batch committed.
	ckCtx, stopCheckpoints := context.WithCancel(context.WithoutCancel(ctx))
	var ck sync.WaitGroup
	if s.checkpointer != nil {
		ck.Go(func() { _ = s.checkpointer.Run(ckCtx) })
	}
	err := s.router.Run(ctx)
	stopBatches()
	wg.Wait()
	stopCheckpoints()
	ck.Wait()
	st := s.projector.Stats()
	s.log.Info("projector stopped", "votes_accepted", st.VotesAccepted, "votes_rejected", st.VotesRejected,
		"vote_batches", st.VoteBatches, "dead_lettered", st.DeadLettered)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

// httpServer serves the API, the dashboard and its live stream, with
// timeouts set against slow clients.
type httpServer struct {
	log   *slog.Logger
	ln    net.Listener
	srv   *http.Server
	snaps *handlers.Snapshots // ends the live streams when its Run returns
}

func newHTTPServer(log *slog.Logger, addr string, pool *pgxpool.Pool, logEnds projections.HighWatermarksFunc, m *metrics.Metrics, intake *intakeService) (*httpServer, error) {
	results, err := projections.NewResults(pool)
	if err != nil {
		return nil, err
	}
	ready, err := readiness(pool)
	if err != nil {
		return nil, err
	}
	m.Projection(projectionStatus(results, logEnds))
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
	stream, err := handlers.NewStream(snaps, handlers.StreamConfig{}, log)
	if err != nil {
		return nil, err
	}
	api.ServeFromSnapshots(snaps)
	mux := http.NewServeMux()
	api.Register(mux)
	handlers.RegisterDashboard(mux, stream)
	if intake != nil {
		intake.api.Register(mux)
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

// newOpsServer serves a process's /metrics, /healthz and /readyz on a
// listener of its own, apart from the public one (/readyz answers 503 while
// the database is unreachable or not migrated).
func newOpsServer(log *slog.Logger, addr string, pool *pgxpool.Pool, m *metrics.Metrics) (*httpServer, error) {
	ready, err := readiness(pool)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	handlers.RegisterProbes(mux, ready, log)
	return listen(log, addr, m.InstrumentHTTP(mux), nil)
}

// serveOps runs newOpsServer in g when addr is set.
func serveOps(ctx context.Context, g *errgroup.Group, log *slog.Logger, addr string, pool *pgxpool.Pool, m *metrics.Metrics) error {
	if addr == "" {
		return nil
	}
	ops, err := newOpsServer(log, addr, pool, m)
	if err != nil {
		return err
	}
	g.Go(func() error { return ops.Run(ctx) })
	log.Info("metrics served", "addr", "http://"+ops.Addr()+"/metrics")
	return nil
}

func projectionStatus(results *projections.Results, logEnds projections.HighWatermarksFunc) metrics.StatusFunc {
	return func(ctx context.Context) (projections.Status, error) { return results.Status(ctx, logEnds) }
}

func listen(log *slog.Logger, addr string, h http.Handler, snaps *handlers.Snapshots) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return &httpServer{log: log, ln: ln, snaps: snaps, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// Addr returns the address the server listens on.
func (s *httpServer) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then ends the live streams and drains open
// requests.
func (s *httpServer) Run(ctx context.Context) error {
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

func newSimulator(log *slog.Logger, kcfg kafka.Config, f SimulationFlags, klog *kafka.Log) (*simulator.Simulator, func(), error) {
	cfg, err := simulator.LoadElection(f.Config)
	if err != nil {
		return nil, nil, err
	}
	election, err := simulator.Generate(cfg, f.Voters, time.Now())
	if err != nil {
		return nil, nil, err
	}
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return nil, nil, err
	}
	topicSize := func(ctx context.Context, topic string) (int64, error) {
		hi, err := klog.HighWatermarks(ctx, topic)
		if err != nil {
			return 0, err
		}
		lo, err := klog.LowWatermarks(ctx, topic)
		if err != nil {
			return 0, err
		}
		var n int64
		for p, h := range hi {
			n += h - lo[p]
		}
		return n, nil
	}
	simCfg := simulator.Config{
		Election: election, Rate: f.Rate, TopicSize: topicSize,
		Faults: simulator.Faults{
			Redeliveries: f.Redeliveries, DoubleVotes: f.DoubleVotes, UnknownVoters: f.UnknownVoters,
			UnknownCandidates: f.UnknownCandidates, Malformed: f.Malformed,
		},
	}
	if f.CloseRegistration {
		simCfg.CloseRegistration = func(context.Context) error { return kafka.CloseRegistration(pub, time.Now()) }
	}
	sim, err := simulator.New(simCfg, pub, log.With("component", "simulator"))
	if err != nil {
		_ = pub.Close()
		return nil, nil, err
	}
	return sim, func() { _ = pub.Close() }, nil
}

// kafkaConfig is how to reach brokers with these security settings.
func (f KafkaSecurityFlags) kafkaConfig(brokers []string, partitions int32) (kafka.Config, error) {
	cfg := kafka.Config{Brokers: brokers, Partitions: partitions}
	if f.KafkaTLS || f.KafkaTLSCAFile != "" {
		tlsCfg, err := kafka.TLSConfig(f.KafkaTLSCAFile)
		if err != nil {
			return kafka.Config{}, err
		}
		cfg.TLS = tlsCfg
	}
	if f.KafkaSASLMechanism != "" {
		password := f.KafkaSASLPassword
		if f.KafkaSASLPasswordFile != "" {
			b, err := os.ReadFile(f.KafkaSASLPasswordFile)
			if err != nil {
				return kafka.Config{}, fmt.Errorf("kafka SASL password: %w", err)
			}
			password = strings.TrimSpace(string(b))
		}
		cfg.SASL = &kafka.SASL{Mechanism: f.KafkaSASLMechanism, User: f.KafkaSASLUsername, Password: password}
		if err := cfg.SASL.Validate(); err != nil {
			return kafka.Config{}, err
		}
	}
	return cfg, nil
}
