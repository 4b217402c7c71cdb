package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xdgscram "github.com/xdg-go/scram"
)

// SASL mechanisms votewatch speaks (those managed Kafka services offer).
const (
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// SASL authenticates to the brokers.
type SASL struct {
	Mechanism, User, Password string
}

// Validate reports an incomplete or unknown SASL configuration.
func (s *SASL) Validate() error {
	if s == nil {
		return nil
	}
	switch s.Mechanism {
	case SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512:
	default:
		return fmt.Errorf("kafka: unknown SASL mechanism %q (want %s, %s or %s)", s.Mechanism, SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512)
	}
	if s.User == "" || s.Password == "" {
		return errors.New("kafka: SASL needs a username and a password")
	}
	return nil
}

// TLSConfig returns a client TLS configuration trusting the CAs in
// caFile (PEM), or the system's when caFile is empty.
func TLSConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("kafka CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kafka CA: no PEM certificate in %s", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// secureSarama applies TLS and SASL to a sarama configuration.
func (c Config) secureSarama(sc *sarama.Config) {
	if c.TLS != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = c.TLS.Clone()
	}
	if c.SASL == nil {
		return
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.User, sc.Net.SASL.Password = c.SASL.User, c.SASL.Password
	switch c.SASL.Mechanism {
	case SASLPlain:
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case SASLSCRAMSHA256:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: xdgscram.SHA256} }
	case SASLSCRAMSHA512:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: xdgscram.SHA512} }
	}
}

// kgoOpts are the franz-go client options for the same brokers, TLS and
// SASL (used for admin requests and direct partition reads).
func (c Config) kgoOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.clientID())}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	if c.SASL != nil {
		var m sasl.Mechanism
		switch c.SASL.Mechanism {
		case SASLPlain:
			m = plain.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsMechanism()
		case SASLSCRAMSHA256:
			m = scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha256Mechanism()
		case SASLSCRAMSHA512:
			m = scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(m))
	}
	return append(opts, extra...)
}

// scramClient is sarama's SCRAM conversation, on xdg-go/scram.
type scramClient struct {
	hash xdgscram.HashGeneratorFcn
	conv *xdgscram.ClientConversation
}

func (s *scramClient) Begin(user, password, authzID string) error {
	client, err := s.hash.NewClient(user, password, authzID)
	if err != nil {
		return fmt.Errorf("scram: %w", err)
	}
	s.conv = client.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *scramClient) Done() bool                            { return s.conv.Done() }
