package kafka

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Our producer must send a key to the partition the Java client (and
// franz-go, and librdkafka's murmur2_random) would choose, or "first vote
// wins" would depend on which program published a vote.
func TestPartitionerMatchesJavaClient(t *testing.T) {
	cfg := Config{Brokers: []string{"unused:9092"}}
	ours := cfg.saramaConfig().Producer.Partitioner("votes")
	reference := kgo.StickyKeyPartitioner(nil).ForTopic("votes") // Kafka's murmur2
	for _, partitions := range []int32{1, 7, 32, 64} {
		for i := range 2000 {
			key := fmt.Sprintf("voter-%d", i)
			got, err := ours.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, partitions)
			if err != nil {
				t.Fatal(err)
			}
			want := reference.Partition(&kgo.Record{Key: []byte(key)}, int(partitions))
			if int(got) != want {
				t.Fatalf("key %q over %d partitions: ours %d, Java client %d", key, partitions, got, want)
			}
		}
	}
}
