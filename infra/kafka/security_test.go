package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
)

// selfSigned makes a CA-less server certificate for 127.0.0.1 and writes it
// as the CA file a client would be given.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, caFile
}

// Every client votewatch opens (sarama's producer, admin and consumer
// group; franz-go's admin and partition reader) speaks TLS and each SASL
// mechanism to a broker that demands them, and a wrong password is refused.
func TestEveryClientAuthenticatesToAManagedKafka(t *testing.T) {
	serverTLS, caFile := selfSigned(t)
	for _, mech := range []string{SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech, "votewatch", "s3cret-pass"),
				kfake.TLS(serverTLS), kfake.GroupMinSessionTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			clientTLS, err := TLSConfig(caFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{Brokers: cluster.ListenAddrs(), Partitions: 2, TLS: clientTLS, SASL: &SASL{Mechanism: mech, User: "votewatch", Password: "s3cret-pass"}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			if err := EnsureTopics(ctx, cfg, map[string]int32{"votes": 2}); err != nil {
				t.Fatalf("create topics: %v", err)
			}
			pub, err := NewPublisher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			m := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
			m.Metadata.Set(KeyMetadata, "voter-1")
			if err := pub.Publish("votes", m); err != nil {
				t.Fatalf("publish: %v", err)
			}
			sub, err := NewSubscriber(cfg, SubscriberConfig{Group: "g", SessionTimeout: 6 * time.Second}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			msgs, err := sub.Subscribe(ctx, "votes")
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			select {
			case got := <-msgs:
				got.Ack()
			case <-ctx.Done():
				t.Fatal("the consumer group read nothing")
			}
			log, err := NewLog(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			ends, err := log.HighWatermarks(ctx, "votes")
			if err != nil || ends[0]+ends[1] != 1 {
				t.Fatalf("high watermarks %v, %v", ends, err)
			}
			var read int
			if err := ReadRange(ctx, cfg, "votes", nil, ends, func(rs []Record) error { read += len(rs); return nil }); err != nil || read != 1 {
				t.Fatalf("read range: %d records, %v", read, err)
			}
			if _, err := CommittedOffsets(ctx, cfg, "g", "votes"); err != nil {
				t.Fatalf("committed offsets: %v", err)
			}

			wrong := cfg
			wrong.SASL = &SASL{Mechanism: mech, User: "votewatch", Password: "guess"}
			short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
			defer cancelShort()
			if err := EnsureTopics(short, wrong, map[string]int32{"other": 1}); err == nil {
				t.Error("a wrong password was accepted")
			}
		})
	}
}
