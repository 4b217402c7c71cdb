package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/internal/testutil"
)

// goroutinesIn counts the goroutines whose stack passes through pkg.
func goroutinesIn(pkg string) (int, string) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var seen []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, pkg) {
			n++
			seen = append(seen, g)
		}
	}
	return n, strings.Join(seen, "\n\n")
}

// A command whose start-up fails after it has started its goroutines
// (here the simulator's config is bad, found after the projector, the API
// and the relay run) must stop them before it returns: otherwise the
// deferred cleanup closes the pool and the broker clients under them, and
// they run on after the command has ended.
func TestDemoRunReturnsOnlyAfterItsGoroutinesEnded(t *testing.T) {
	dsn := testutil.DatabaseURL(t)
	kcfg := testutil.Kafka(t, 4)
	badConfig := filepath.Join(t.TempDir(), "election.json")
	if err := os.WriteFile(badConfig, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, []string{"--log-level", "error", "demo", "--http", addr, "--simulate",
		"--database-url", dsn, "--kafka-brokers", strings.Join(kcfg.Brokers, ","), "--partitions", "4",
		"--station-tokens", "north-1=shutdown-test-token-0123456789@West", "--config", badConfig}, &out, &out)
	if code == 0 {
		t.Fatalf("demo with a bad election config exited 0:\n%s", out.String())
	}
	// Checked at once: Run must not return while its server still serves.
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("demo returned with its HTTP server still listening on %s", addr)
	}
	if n, stacks := goroutinesIn("votewatch/votewatch/handlers"); n > 0 {
		t.Errorf("demo returned with %d goroutines of its handlers running:\n%s", n, stacks)
	}
}

// A start-up that fails after the projector service was built (here its
// metrics address is taken) must close everything it opened: the
// projector's Kafka clients too, not only those the command opened itself.
func TestFailedStartUpClosesTheProjectorsClients(t *testing.T) {
	dsn := testutil.DatabaseURL(t)
	kcfg := testutil.Kafka(t, 4)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	before, _ := goroutinesIn("IBM/sarama")
	var out bytes.Buffer
	code := run(context.Background(), []string{"--log-level", "error", "project", "--metrics-addr", taken.Addr().String(),
		"--database-url", dsn, "--kafka-brokers", strings.Join(kcfg.Brokers, ","), "--partitions", "4"}, &out, &out)
	if code == 0 {
		t.Fatalf("project with its metrics address taken exited 0:\n%s", out.String())
	}
	// A closed client's goroutines end shortly after Close returns.
	testutil.Eventually(t, 10*time.Second, "the Kafka clients the failed start-up opened to close", func() (bool, string) {
		n, stacks := goroutinesIn("IBM/sarama")
		return n <= before, stacks
	})
}
