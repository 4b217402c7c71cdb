package kafka_test

import (
	"testing"
	"time"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/testutil"
)

// A message that names its timestamp (a translation keeping its source's
// log time) is logged at it; one whose timestamp cannot be read is
// refused, not sent at another time.
func TestPublishKeepsATimestampTheMessageNames(t *testing.T) {
	cfg := testutil.Kafka(t, 2)
	pub, err := kafka.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	at := time.Now().Add(-6 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	m := kafka.KeyedMessage("v-1", []byte(`{}`))
	m.Metadata.Set(kafka.TimestampMetadata, at.Format(time.RFC3339Nano))
	if err := pub.Publish("voters", m); err != nil {
		t.Fatal(err)
	}
	got := testutil.ReadTopic(t, cfg, "voters", 1, 30*time.Second)
	if len(got) != 1 || !got[0].Timestamp.Equal(at) {
		t.Fatalf("logged %d records, first at %v; want one at %v", len(got), got, at)
	}
	bad := kafka.KeyedMessage("v-2", []byte(`{}`))
	bad.Metadata.Set(kafka.TimestampMetadata, "yesterday")
	if err := pub.Publish("voters", bad); err == nil {
		t.Error("a message with an unreadable timestamp was published")
	}
}
