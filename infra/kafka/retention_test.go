package kafka_test

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/testutil"
)

func TestRetentionProblemsNameTopicsThatForget(t *testing.T) {
	cfg := testutil.Kafka(t, 2)
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cfg, kafka.EventTopics(2)); err != nil {
		t.Fatal(err)
	}
	if problems, err := kafka.RetentionProblems(ctx, cfg, []string{"votes", "voters", "candidates"}); err != nil || len(problems) != 0 {
		t.Fatalf("topics votewatch created: %v, %v; want none", problems, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	week, compact := "604800000", "compact"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &week, "cleanup.policy": &compact}, "short-lived"); err != nil {
		t.Fatal(err)
	}
	problems, err := kafka.RetentionProblems(ctx, cfg, []string{"short-lived", "not-there"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(problems, "\n")
	if !strings.Contains(got, "short-lived: retention.ms=604800000") || !strings.Contains(got, "cleanup.policy=compact") {
		t.Errorf("problems = %q, want retention.ms and compaction named", got)
	}
}
