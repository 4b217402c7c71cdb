package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/projections/write"
)

// The projector's Kafka consumers (ProjectorConfig.Consumer): the
// pipelined subscriber (many messages of a partition in flight, never two
// of one key) and watermill-kafka's (one message per partition).
const (
	ConsumerPipelined      = "pipelined"
	ConsumerWatermillKafka = "watermill-kafka"
)

// ProjectorConfig tunes the projector.
type ProjectorConfig struct {
	// Group is the consumer group prefix; each topic gets <Group>.<topic>.
	Group          string
	BatchSize      int
	Writers        int
	Linger         time.Duration
	SessionTimeout time.Duration
	// Consumer is ConsumerPipelined (the default) or ConsumerWatermillKafka.
	Consumer string
	// Transparency turns the transparency log on (its CheckpointKey set).
	Transparency TransparencyConfig
	// MinCell is the disclosure rule's k (0: domain.DefaultMinCell): the
	// projector's releaser publishes a cell's votes only in steps of at
	// least MinCell while the polls are open (README, "What is
	// published"). The read API must run with the same k.
	MinCell int
	// Opener decodes votes: sealed choices opened with the tally key, clear
	// votes refused when sealing is required (nil: clear votes only).
	// StartProjector uses the App's.
	Opener *domain.Opener
}

// ProjectorService is the live write path: a Watermill router with one
// consumer group per topic feeding the projector's group commits.
type ProjectorService struct {
	log          *slog.Logger
	router       *message.Router
	projector    *write.Projector
	checkpointer *trees.Checkpointer // nil without a transparency log
	releaser     *write.Releaser

	closeOnce sync.Once
	closers   []func()
}

// NewProjectorService builds the projector. Its Kafka clients are released
// when Run returns, or by Close if it never runs.
func NewProjectorService(log *slog.Logger, pool *pgxpool.Pool, kcfg kafka.Config, cfg ProjectorConfig, klog *kafka.Log, m *metrics.Metrics) (*ProjectorService, error) {
	s := &ProjectorService{log: log}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	wlog := watermillLogger(log, "watermill")

	store, err := write.NewStore(pool)
	if err != nil {
		return nil, err
	}
	// Held votes are stored sealed as they came (00040) and opened again
	// when released.
	store.OpenWith(cfg.Opener)
	if s.projector, err = write.NewProjector(store, write.ProjectorConfig{
		Votes:           write.BatcherConfig{MaxBatch: cfg.BatchSize, Writers: cfg.Writers, Linger: cfg.Linger, Observe: m.ObserveBatch},
		Registrations:   write.BatcherConfig{MaxBatch: 2000, Writers: 1, Observe: m.ObserveBatch},
		TopicPartitions: klog.Partitions,
	}, log); err != nil {
		return nil, err
	}
	m.Projector(s.projector.Stats)
	events, err := handlers.NewEventHandlers(s.projector, log)
	if err != nil {
		return nil, err
	}
	events.OpenWith(cfg.Opener)
	dlq, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = dlq.Close() })
	if s.checkpointer, err = newCheckpointer(log, pool, cfg.Transparency, ReplayLog{kcfg, klog}, dlq, cfg.Opener); err != nil {
		return nil, err
	}
	if s.checkpointer != nil {
		m.Checkpointer(s.checkpointer.Stats)
	}

	rule, err := DisclosureRule(cfg.MinCell)
	if err != nil {
		return nil, err
	}
	if s.releaser, err = write.NewReleaser(pool, rule, write.ReleaserConfig{}, log); err != nil {
		return nil, err
	}
	if cfg.Consumer == "" {
		cfg.Consumer = ConsumerPipelined
	}
	log.Info("projector consumer", "consumer", cfg.Consumer)
	subs := handlers.Subscribers{}
	for _, topic := range domain.EventTopics {
		// Each partition resumes where this database's projection stands,
		// not where the group last committed: the database may be newer
		// than the group (recreated, restored from a backup).
		sc := kafka.SubscriberConfig{
			Group: cfg.Group + "." + topic, SessionTimeout: cfg.SessionTimeout, Applied: store.AppliedOffsets,
		}
		var sub message.Subscriber
		if cfg.Consumer == ConsumerWatermillKafka {
			sub, err = kafka.NewSubscriber(kcfg, sc, wlog)
		} else {
			sub, err = kafka.NewPipelinedSubscriber(kcfg, kafka.PipelinedConfig{
				SubscriberConfig: sc, Annotate: handlers.ContextWithRecord,
			}, wlog)
		}
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = sub.Close() })
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

// Close releases the service's Kafka clients, in reverse order of opening.
// Safe to call more than once, and after Run.
func (s *ProjectorService) Close() {
	s.closeOnce.Do(func() {
		for i := len(s.closers) - 1; i >= 0; i-- {
			s.closers[i]()
		}
	})
}

// Run consumes until ctx ends. Shutdown order matters: the router stops
// taking messages and waits for handlers in flight, whose batches the
// projector still commits; only then do the batchers stop.
func (s *ProjectorService) Run(ctx context.Context) error {
	defer s.Close()
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
	var rel sync.WaitGroup
	rel.Go(func() { _ = s.releaser.Run(ctx) })
	err := s.router.Run(ctx)
	stopBatches()
	wg.Wait()
	rel.Wait()
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

// DisclosureRule is the disclosure rule for a minimum cell size k (0:
// domain.DefaultMinCell).
func DisclosureRule(k int) (domain.Disclosure, error) {
	if k == 0 {
		k = domain.DefaultMinCell
	}
	return domain.NewDisclosure(k)
}
