package kafka

import (
	"testing"
	"time"
)

// A JoinGroup (and a SyncGroup) may rightly wait for the whole rebalance
// timeout; sarama gives every request Net.ReadTimeout, so a shorter read
// timeout turns a slow but normal rebalance into an "i/o timeout" and a
// fresh member that starts the rebalance over.
func TestJoinMayWaitTheWholeRebalance(t *testing.T) {
	cfg := Config{Brokers: []string{"unused:9092"}}
	for _, session := range []time.Duration{time.Second, 10 * time.Second, 30 * time.Second, 2 * time.Minute} {
		sc := SubscriberConfig{Group: "g", SessionTimeout: session}
		sc.setDefaults()
		c := sc.saramaConfig(cfg)
		if err := c.Validate(); err != nil {
			t.Fatalf("session %v: %v", session, err)
		}
		if c.Net.ReadTimeout <= c.Consumer.Group.Rebalance.Timeout {
			t.Errorf("session %v: read timeout %v, rebalance timeout %v", session, c.Net.ReadTimeout, c.Consumer.Group.Rebalance.Timeout)
		}
	}
}
