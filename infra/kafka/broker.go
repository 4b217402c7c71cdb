package kafka

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig describes the embedded broker.
type BrokerConfig struct {
	// Port on 127.0.0.1 (0 picks a free one).
	Port int
	// DataDir keeps the log and committed offsets on disk so the event log
	// survives a restart; empty keeps everything in memory.
	DataDir string
	// Partitions for topics created without an explicit count.
	Partitions int
}

// Broker is an in-process Kafka broker speaking the real wire protocol on
// loopback (franz-go's kfake), for the demo, tests and single-machine use.
type Broker struct {
	cluster  *kfake.Cluster
	sessions *groupSessions
}

// StartBroker starts the embedded broker.
func StartBroker(cfg BrokerConfig, log *slog.Logger) (*Broker, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.Port),
		kfake.ClusterID("votewatch"),
		// Let clients choose short session timeouts so a crashed
		// projector's partitions move on in seconds.
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if cfg.Partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(cfg.Partitions))
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create broker data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka on port %d: %w", cfg.Port, err)
	}
	sessions, err := startGroupSessions(c, log)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("start embedded kafka's group sessions: %w", err)
	}
	log.Info("embedded kafka broker started", "addr", c.ListenAddrs()[0], "data_dir", cfg.DataDir)
	return &Broker{cluster: c, sessions: sessions}, nil
}

// Addr returns the bootstrap address (127.0.0.1:port).
func (b *Broker) Addr() string { return b.cluster.ListenAddrs()[0] }

// Close stops the broker, flushing its log to disk.
func (b *Broker) Close() {
	b.sessions.close()
	b.cluster.Close()
}
