package testutil

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/testutil/wait"
)

// Kafka starts an in-process broker on loopback for this test, with the
// event topics created, and returns how to reach it.
func Kafka(tb testing.TB, partitions int32) kafka.Config {
	tb.Helper()
	broker, err := kafka.StartBroker(kafka.BrokerConfig{}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("start broker: %v", err)
	}
	tb.Cleanup(broker.Close)
	cfg := kafka.Config{Brokers: []string{broker.Addr()}, Partitions: partitions}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cfg, kafka.EventTopics(partitions)); err != nil {
		tb.Fatalf("create topics: %v", err)
	}
	return cfg
}

// ReadTopic returns every record currently in topic, read with a plain
// Kafka client (not votewatch's), so tests check what is really on the log.
func ReadTopic(tb testing.TB, cfg kafka.Config, topic string, want int, timeout time.Duration) []*kgo.Record {
	tb.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// Eventually polls cond until it holds or timeout passes, and fails tb
// then (wait.For).
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	wait.For(tb, timeout, what, cond)
}
