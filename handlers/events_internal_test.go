package handlers

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/write"
)

// A message whose handling panics goes to the poison queue like one that
// does not decode, and, like it, is recorded as a dead letter: the
// projection accounts for every message it moved past (found in review:
// the transparency log's tree stopped at such a message for good).
func TestAMessageThatPanicsIsADeadLetter(t *testing.T) {
	ctx := context.Background()
	pool := testutil.Pool(t)
	store, err := write.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	proj, err := write.NewProjector(store, write.ProjectorConfig{
		Votes: write.BatcherConfig{MaxBatch: 10, Writers: 1}, Registrations: write.BatcherConfig{MaxBatch: 10, Writers: 1},
		TopicPartitions: func(context.Context, string) (int, error) { return 1, nil },
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewEventHandlers(proj, log)
	if err != nil {
		t.Fatal(err)
	}
	kcfg := testutil.Kafka(t, 1)
	wlog := watermill.NopLogger{}
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := kafka.NewPipelinedSubscriber(kcfg, kafka.PipelinedConfig{
		SubscriberConfig: kafka.SubscriberConfig{Group: "panics", SessionTimeout: 6 * time.Second}, Annotate: ContextWithRecord,
	}, wlog)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	router, err := message.NewRouter(message.RouterConfig{}, wlog)
	if err != nil {
		t.Fatal(err)
	}
	mw, err := h.projectionMiddleware(pub, domain.TopicVotes, wlog)
	if err != nil {
		t.Fatal(err)
	}
	router.AddConsumerHandler("panics", domain.TopicVotes, sub, func(*message.Message) error { panic("boom") }).AddMiddleware(mw...)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- router.Run(runCtx) }()
	defer func() { stop(); <-done }()
	if err := pub.Publish(domain.TopicVotes, message.NewMessage(watermill.NewUUID(), []byte(`{"vote_id":"x"}`))); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the message that panicked recorded as a dead letter", func() (bool, string) {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM dead_letters WHERE topic = 'votes'`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 1, ""
	})
}
