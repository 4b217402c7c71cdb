package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
)

// BridgeConfig tunes the realtime_voting bridge.
type BridgeConfig struct {
	// Group is the consumer group prefix; each source topic gets
	// <Group>.<topic> (default "votewatch-bridge"). Several processes
	// with the bridge on share the partitions.
	Group          string
	SessionTimeout time.Duration
	// SealTo, when set, seals every translated vote's choice to the
	// election's tally key (StartRealtimeVotingBridge uses the App's
	// Sealing): votewatch's log then holds no clear choice, though
	// realtime_voting's own votes_topic still does.
	SealTo domain.TallyPublicKey
}

// BridgeService translates realtime_voting's topics into votewatch's
// (handlers.RealtimeVoting): a Watermill router with one consumer group
// per source topic, publishing with votewatch's murmur2 publisher.
type BridgeService struct {
	log     *slog.Logger
	router  *message.Router
	bridge  *handlers.RealtimeVoting
	once    sync.Once
	closers []func()
}

// StartRealtimeVotingBridge creates realtime_voting's topics where they are
// missing (with Kafka's partition count) and runs the bridge in Run.
// OpenKafka must have run.
func (a *App) StartRealtimeVotingBridge(ctx context.Context, cfg BridgeConfig) (*BridgeService, error) {
	if err := kafka.EnsureTopics(ctx, a.Kafka, kafka.RealtimeVotingTopics(a.Kafka.Partitions)); err != nil {
		return nil, fmt.Errorf("create realtime_voting's topics: %w", err)
	}
	if cfg.SealTo.IsZero() {
		cfg.SealTo = a.Sealing.Public
	}
	s, err := NewBridgeService(a.Log, a.Kafka, cfg, a.Metrics)
	if err != nil {
		return nil, err
	}
	a.OnClose(s.Close)
	a.Go(s.Run)
	a.Log.Info("realtime_voting bridge on", "from", []string{domain.TopicRealtimeVoters, domain.TopicRealtimeVotes},
		"to", []string{domain.TopicVoters, domain.TopicVotes})
	return s, nil
}

// NewBridgeService builds the bridge on kcfg. Its Kafka clients are
// released when Run returns, or by Close if it never runs.
func NewBridgeService(log *slog.Logger, kcfg kafka.Config, cfg BridgeConfig, m *metrics.Metrics) (*BridgeService, error) {
	if cfg.Group == "" {
		cfg.Group = "votewatch-bridge"
	}
	s := &BridgeService{log: log}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	wlog := watermillLogger(log, "bridge")
	// One publisher for translations and dead letters: it partitions by
	// the "key" metadata with murmur2, as every votewatch producer does.
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = pub.Close() })
	if s.bridge, err = handlers.NewRealtimeVoting(log, pub); err != nil {
		return nil, err
	}
	if !cfg.SealTo.IsZero() {
		s.bridge.SealTo(cfg.SealTo)
	}
	if m != nil {
		m.Bridge(func() metrics.BridgeStats {
			st := s.bridge.Stats()
			return metrics.BridgeStats{Voters: st.Voters, Votes: st.Votes, DeadLettered: st.DeadLettered}
		})
	}
	subs := handlers.Subscribers{}
	for _, topic := range []string{domain.TopicRealtimeVoters, domain.TopicRealtimeVotes} {
		// Many messages in flight, never two of one key: a voter's
		// messages are translated, and published, in their log order.
		sub, err := kafka.NewPipelinedSubscriber(kcfg, kafka.PipelinedConfig{
			SubscriberConfig: kafka.SubscriberConfig{Group: cfg.Group + "." + topic, SessionTimeout: cfg.SessionTimeout},
			Annotate:         handlers.ContextWithRecord,
		}, wlog)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = sub.Close() })
		subs[topic] = sub
	}
	if s.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wlog); err != nil {
		return nil, fmt.Errorf("new bridge router: %w", err)
	}
	if err := handlers.AddRealtimeVotingHandlers(s.router, subs, pub, s.bridge); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Stats returns what the bridge translated since it started.
func (s *BridgeService) Stats() handlers.RealtimeVotingStats { return s.bridge.Stats() }

// Close releases the bridge's Kafka clients. Safe to call more than once,
// and after Run.
func (s *BridgeService) Close() {
	s.once.Do(func() {
		for i := len(s.closers) - 1; i >= 0; i-- {
			s.closers[i]()
		}
	})
}

// Run translates until ctx ends; messages in flight are published and
// acknowledged before it returns. The router stops first: its handlers
// wait on the batches, which stop after it.
func (s *BridgeService) Run(ctx context.Context) error {
	defer s.Close()
	batchCtx, stopBatches := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { s.bridge.Run(batchCtx) })
	err := s.router.Run(ctx)
	stopBatches()
	wg.Wait()
	st := s.bridge.Stats()
	s.log.Info("realtime_voting bridge stopped", "voters", st.Voters, "votes", st.Votes, "dead_lettered", st.DeadLettered)
	if err != nil {
		return fmt.Errorf("bridge router: %w", err)
	}
	return nil
}
