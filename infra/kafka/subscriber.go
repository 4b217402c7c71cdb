package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
)

// SubscriberConfig tunes a consumer-group subscriber.
type SubscriberConfig struct {
	// Group is the consumer group; each handler gets its own so one
	// topic's rebalance never pauses another's.
	Group string
	// SessionTimeout after which a silent member's partitions move to the
	// others (default 10s; the embedded broker accepts down to 1s).
	SessionTimeout time.Duration
	// CommitInterval is how often acknowledged offsets are committed
	// (default 250ms). Shorter means fewer redeliveries after a crash;
	// redeliveries are harmless either way.
	CommitInterval time.Duration
	// NackResendSleep is the pause before a nacked message is redelivered
	// (default 250ms).
	NackResendSleep time.Duration
	// Applied, when set, makes every partition resume from the
	// projection's own offsets wherever the group's commit is ahead of
	// them (see resumeHandler): the log is the truth, then the
	// projection's record, never the group's commits.
	Applied AppliedOffsetsFunc
}

// NewSubscriber returns a Watermill subscriber reading with consumer group
// sc.Group from the oldest offset the group has not committed: a new group
// sees the whole log (Watermill's default would skip the backlog).
func NewSubscriber(cfg Config, sc SubscriberConfig, logger watermill.LoggerAdapter) (*wmkafka.Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sc.Group == "" {
		return nil, errors.New("kafka subscriber: no consumer group")
	}
	sc.setDefaults()
	saramaCfg := sc.saramaConfig(cfg)
	wcfg := wmkafka.SubscriberConfig{
		Brokers:               cfg.Brokers,
		Unmarshaler:           wmkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: saramaCfg,
		ConsumerGroup:         sc.Group,
		NackResendSleep:       sc.NackResendSleep,
		ReconnectRetrySleep:   time.Second,
	}
	if sc.Applied != nil {
		if logger == nil {
			logger = watermill.NopLogger{}
		}
		wcfg.Tracer = resumeTracer{group: sc.Group, applied: sc.Applied, patience: sc.SessionTimeout, log: logger}
	}
	sub, err := wmkafka.NewSubscriber(wcfg, logger)
	if err != nil {
		return nil, fmt.Errorf("new subscriber for group %s: %w", sc.Group, err)
	}
	return sub, nil
}

func (sc *SubscriberConfig) setDefaults() {
	if sc.SessionTimeout == 0 {
		sc.SessionTimeout = 10 * time.Second
	}
	if sc.CommitInterval == 0 {
		sc.CommitInterval = 250 * time.Millisecond
	}
	if sc.NackResendSleep == 0 {
		sc.NackResendSleep = 250 * time.Millisecond
	}
}

// saramaConfig is the consumer group configuration for sc.
func (sc SubscriberConfig) saramaConfig(cfg Config) *sarama.Config {
	saramaCfg := cfg.saramaConfig()
	saramaCfg.Consumer.Return.Errors = true
	saramaCfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	saramaCfg.Consumer.Offsets.AutoCommit.Enable = true
	saramaCfg.Consumer.Offsets.AutoCommit.Interval = sc.CommitInterval
	saramaCfg.Consumer.Group.Session.Timeout = sc.SessionTimeout
	saramaCfg.Consumer.Group.Heartbeat.Interval = sc.SessionTimeout / 3
	// How long a rebalance waits for members to rejoin. sarama's default
	// (60 s) lets a killed member stall the group for a minute after every
	// crash. Live members rejoin within a batch.
	saramaCfg.Consumer.Group.Rebalance.Timeout = sc.SessionTimeout + 2*time.Second
	// A JoinGroup or SyncGroup may rightly wait for the whole rebalance
	// timeout, and sarama reads every answer within Net.ReadTimeout: a
	// shorter one abandons a normal rebalance ("i/o timeout") and starts
	// another as a new member.
	saramaCfg.Net.ReadTimeout = max(saramaCfg.Net.ReadTimeout, saramaCfg.Consumer.Group.Rebalance.Timeout+5*time.Second)
	// An offset below the log's start (a rewind to a truncated log) starts
	// at the oldest message instead of failing the claim.
	saramaCfg.Consumer.Group.ResetInvalidOffsets = true
	return saramaCfg
}

// Log reads positions in the log: where each partition ends.
type Log struct {
	mu     sync.Mutex
	client sarama.Client
}

// NewLog connects a client for reading log positions.
func NewLog(cfg Config) (*Log, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(cfg.Brokers, cfg.saramaConfig())
	if err != nil {
		return nil, fmt.Errorf("connect to kafka %v: %w", cfg.Brokers, err)
	}
	return &Log{client: client}, nil
}

// HighWatermarks returns, for each partition of topic, the offset the next
// message will get. It asks each partition leader once for all its
// partitions.
func (l *Log) HighWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	return l.offsets(ctx, topic, sarama.OffsetNewest)
}

// LowWatermarks returns, for each partition of topic, its first offset.
func (l *Log) LowWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	return l.offsets(ctx, topic, sarama.OffsetOldest)
}

func (l *Log) offsets(ctx context.Context, topic string, which int64) (map[int32]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	partitions, err := l.client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return map[int32]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	byLeader := map[*sarama.Broker]*sarama.OffsetRequest{}
	for _, p := range partitions {
		leader, err := l.client.Leader(topic, p)
		if err != nil {
			return nil, fmt.Errorf("leader of %s/%d: %w", topic, p, err)
		}
		req := byLeader[leader]
		if req == nil {
			req = &sarama.OffsetRequest{Version: 1}
			byLeader[leader] = req
		}
		req.AddBlock(topic, p, which, 1)
	}
	out := make(map[int32]int64, len(partitions))
	for leader, req := range byLeader {
		resp, err := leader.GetAvailableOffsets(req)
		if err != nil {
			_ = l.client.RefreshMetadata(topic)
			return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		for p, block := range resp.Blocks[topic] {
			if !errors.Is(block.Err, sarama.ErrNoError) {
				return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, p, block.Err)
			}
			out[p] = block.Offset
		}
	}
	return out, nil
}

// Close closes the client.
func (l *Log) Close() error { return l.client.Close() }

// Partitions returns how many partitions topic has.
func (l *Log) Partitions(ctx context.Context, topic string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.client.RefreshMetadata(topic); err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	ps, err := l.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	return len(ps), nil
}
