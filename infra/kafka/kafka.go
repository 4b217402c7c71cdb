// Package kafka connects votewatch to Kafka: Watermill publishers and
// subscribers on sarama, topic setup, log positions, and the embedded broker.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/votewatch/votewatch/domain"
	"time"

	"github.com/IBM/sarama"
)

// Config says how to reach Kafka and how topics are laid out.
type Config struct {
	// Brokers are the bootstrap addresses (host:port).
	Brokers []string
	// Partitions is the partition count of the event topics (default 256).
	// The projector holds one message in flight per partition, so this
	// bounds its concurrency.
	Partitions int32
	// ReplicationFactor of created topics (default 1).
	ReplicationFactor int16
	// ClientID names this process to the brokers (default "votewatch").
	ClientID string
	// TLS, when set, encrypts every connection (see TLSConfig).
	TLS *tls.Config
	// SASL, when set, authenticates every connection.
	SASL *SASL
}

func (c Config) clientID() string {
	if c.ClientID == "" {
		return "votewatch"
	}
	return c.ClientID
}

func (c *Config) setDefaults() {
	if c.Partitions == 0 {
		c.Partitions = 256
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.ClientID == "" {
		c.ClientID = "votewatch"
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers")
	}
	if c.Partitions < 1 || c.ReplicationFactor < 1 {
		return errors.New("kafka: partitions and replication factor must be positive")
	}
	return c.SASL.Validate()
}

// ProtocolVersion is the Kafka protocol version spoken. 2.1 is the oldest
// that Kafka 4.x accepts and the oldest with which sarama's consumer groups
// join the embedded broker.
var ProtocolVersion = sarama.V2_1_0_0

// saramaConfig is the base client configuration. Keys are partitioned
// with murmur2 like the Java client, so any producer sends a voter to the
// same partition.
func (c Config) saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = ProtocolVersion
	sc.ClientID = c.ClientID
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 200 * time.Millisecond
	sc.Producer.MaxMessageBytes = 4 << 20
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 500 * time.Millisecond
	c.secureSarama(sc)
	return sc
}

// EventTopics are the contract's topics and their dead-letter topics.
func EventTopics(partitions int32) map[string]int32 {
	topics := map[string]int32{}
	for _, t := range domain.EventTopics {
		topics[t] = partitions
		topics[t+".dlq"] = 1
	}
	topics[domain.TopicCheckpoints] = 1
	return topics
}

// EnsureTopics creates the topics that do not exist yet. Existing topics
// are left as they are (their partition count is not changed: that would
// move keys between partitions).
func EnsureTopics(ctx context.Context, cfg Config, topics map[string]int32) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, cfg.saramaConfig())
	if err != nil {
		return fmt.Errorf("connect to kafka %v: %w", cfg.Brokers, err)
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for topic, partitions := range topics {
		if _, ok := existing[topic]; ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := admin.CreateTopic(topic, &sarama.TopicDetail{
			NumPartitions:     partitions,
			ReplicationFactor: cfg.ReplicationFactor,
			// The log is the source of truth: never delete events by age.
			ConfigEntries: map[string]*string{"retention.ms": ptr("-1")},
		}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
