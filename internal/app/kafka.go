package app

import (
	"fmt"
	"os"
	"strings"

	"github.com/votewatch/votewatch/infra/kafka"
)

// KafkaSecurity reaches a managed Kafka over TLS with SASL.
type KafkaSecurity struct {
	TLS       bool
	TLSCAFile string // empty: the system's CAs
	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no
	// SASL); the password is SASLPasswordFile's content if set.
	SASLMechanism, SASLUsername, SASLPassword, SASLPasswordFile string
}

// Config is how to reach brokers with these security settings.
func (f KafkaSecurity) Config(brokers []string, partitions int32) (kafka.Config, error) {
	cfg := kafka.Config{Brokers: brokers, Partitions: partitions}
	if f.TLS || f.TLSCAFile != "" {
		tlsCfg, err := kafka.TLSConfig(f.TLSCAFile)
		if err != nil {
			return kafka.Config{}, err
		}
		cfg.TLS = tlsCfg
	}
	if f.SASLMechanism != "" {
		password := f.SASLPassword
		if f.SASLPasswordFile != "" {
			b, err := os.ReadFile(f.SASLPasswordFile)
			if err != nil {
				return kafka.Config{}, fmt.Errorf("kafka SASL password: %w", err)
			}
			password = strings.TrimSpace(string(b))
		}
		cfg.SASL = &kafka.SASL{Mechanism: f.SASLMechanism, User: f.SASLUsername, Password: password}
		if err := cfg.SASL.Validate(); err != nil {
			return kafka.Config{}, err
		}
	}
	return cfg, nil
}
