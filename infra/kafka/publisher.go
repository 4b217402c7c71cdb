package kafka

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// KeyMetadata is the message metadata entry whose value becomes the Kafka
// message key (and so, through murmur2, the partition).
const KeyMetadata = "key"

// TimestampMetadata is the message metadata entry whose value (RFC 3339),
// when set, becomes the Kafka record's timestamp instead of the time it is
// sent: a translated message keeps its source's log time, which the rule
// checks a vote's cast time against.
const TimestampMetadata = "timestamp"

// PartitionMetadata is the message metadata entry whose value, when set,
// names the partition the message goes to (a control event written to
// every partition through the intake's outbox) instead of its key's.
const PartitionMetadata = "partition"

// PartitionedMessage is a message for partition of its topic.
func PartitionedMessage(partition int, payload []byte) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), payload)
	m.Metadata.Set(PartitionMetadata, strconv.Itoa(partition))
	return m
}

// Event is a domain event as the contract puts it on the log: JSON, keyed
// by the id that orders it.
type Event interface {
	MarshalJSON() ([]byte, error)
	Key() string
}

// EventMessage encodes ev as a message whose Kafka key is ev's key.
func EventMessage(ev Event) (*message.Message, error) {
	payload, err := ev.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return KeyedMessage(ev.Key(), payload), nil
}

// KeyedMessage is a message whose Kafka key is key.
func KeyedMessage(key string, payload []byte) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), payload)
	m.Metadata.Set(KeyMetadata, key)
	return m
}

// Publisher is a Watermill publisher that sends all messages of one Publish
// call in a single produce request per broker. Watermill's own Kafka
// publisher waits for one round trip per message (~9k msg/s here); batching
// reaches ~125k msg/s, which the simulator and bulk tools need.
type Publisher struct {
	client    sarama.Client
	producer  sarama.SyncProducer
	marshaler wmkafka.Marshaler
}

// NewPublisher connects a publisher to cfg.Brokers.
func NewPublisher(cfg Config) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := cfg.saramaConfig()
	keyed := sc.Producer.Partitioner
	sc.Producer.Partitioner = func(topic string) sarama.Partitioner {
		return choosablePartitioner{keyed(topic)}
	}
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connect producer to %v: %w", cfg.Brokers, err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect producer to %v: %w", cfg.Brokers, err)
	}
	marshaler := wmkafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
		return msg.Metadata.Get(KeyMetadata), nil
	})
	return &Publisher{client: client, producer: producer, marshaler: marshaler}, nil
}

// Publish sends msgs to topic and returns once every one is acknowledged by
// all in-sync replicas. Safe for concurrent use.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	batch := make([]*sarama.ProducerMessage, 0, len(msgs))
	for _, m := range msgs {
		pm, err := p.marshaler.Marshal(topic, m)
		if err != nil {
			return fmt.Errorf("marshal message for %s: %w", topic, err)
		}
		if m.Metadata.Get(KeyMetadata) == "" {
			pm.Key = nil // no key: let the partitioner spread the message
		}
		if part := m.Metadata.Get(PartitionMetadata); part != "" {
			n, err := strconv.ParseInt(part, 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("message for %s: %s metadata %q is not a partition", topic, PartitionMetadata, part)
			}
			pm.Metadata = fixedPartition(n)
		}
		if ts := m.Metadata.Get(TimestampMetadata); ts != "" {
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				return fmt.Errorf("message for %s: %s metadata %q: %w", topic, TimestampMetadata, ts, err)
			}
			pm.Timestamp = at
		}
		batch = append(batch, pm)
	}
	if err := p.producer.SendMessages(batch); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			return fmt.Errorf("publish %d messages to %s: %d failed, first: %w", len(msgs), topic, len(perrs), perrs[0].Err)
		}
		return fmt.Errorf("publish %d messages to %s: %w", len(msgs), topic, err)
	}
	return nil
}

// PublishToEveryPartition sends one message to each partition of topic,
// in one produce request: the control events that must stand at a
// position in every partition (registration close markers). payload is
// given the partition count. It returns how many partitions it wrote to.
func (p *Publisher) PublishToEveryPartition(topic string, payload func(partitions int) ([]byte, error)) (int, error) {
	if err := p.client.RefreshMetadata(topic); err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	partitions, err := p.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	body, err := payload(len(partitions))
	if err != nil {
		return 0, err
	}
	batch := make([]*sarama.ProducerMessage, 0, len(partitions))
	for _, partition := range partitions {
		batch = append(batch, &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(body), Metadata: fixedPartition(partition)})
	}
	if err := p.producer.SendMessages(batch); err != nil {
		return 0, fmt.Errorf("publish to every partition of %s: %w", topic, err)
	}
	return len(partitions), nil
}

// Partitions returns how many partitions topic has.
func (p *Publisher) Partitions(topic string) (int, error) {
	if err := p.client.RefreshMetadata(topic); err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	parts, err := p.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	return len(parts), nil
}

// fixedPartition, as a message's Metadata, sends it to that partition.
type fixedPartition int32

// choosablePartitioner partitions by key, except messages that name their
// partition.
type choosablePartitioner struct{ keyed sarama.Partitioner }

func (c choosablePartitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if p, ok := m.Metadata.(fixedPartition); ok {
		if int32(p) >= n {
			return 0, fmt.Errorf("partition %d of %d", p, n)
		}
		return int32(p), nil
	}
	return c.keyed.Partition(m, n)
}

func (c choosablePartitioner) RequiresConsistency() bool { return c.keyed.RequiresConsistency() }

// Close flushes and closes the producer.
func (p *Publisher) Close() error {
	err := p.producer.Close()
	if cerr := p.client.Close(); err == nil && cerr != nil && !errors.Is(cerr, sarama.ErrClosedClient) {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	return nil
}
