package handlers_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/read"
)

// smallBuffers makes a socket's kernel buffers small (and fixed: no
// autotuning), so a peer that stops reading fills them in a few events.
func smallBuffers(opt int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 4096) })
		if err != nil {
			return err
		}
		return serr
	}
}

// liveStream serves a Stream over a real, empty projection that changes
// every few milliseconds, on a listener whose sockets have small send
// buffers. Its snapshots follow the projection every 2 ms. It returns the
// stream and its URL.
func liveStream(t *testing.T, cfg handlers.StreamConfig) (*handlers.Stream, string) {
	t.Helper()
	pool := testutil.Pool(t)
	results, err := read.NewResults(pool)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := handlers.NewSnapshots(results, handlers.SnapshotConfig{Poll: 2 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := handlers.NewStream(snaps, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lc := net.ListenConfig{Control: smallBuffers(syscall.SO_SNDBUF)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(stream)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { snaps.Run(ctx) })
	wg.Go(func() { touchProjection(ctx, pool) })
	t.Cleanup(func() { cancel(); srv.CloseClientConnections(); srv.Close(); wg.Wait() })
	return stream, srv.URL
}

// touchProjection moves the projection's watermark every 2 ms, as a busy
// election does, so the stream pushes event after event.
func touchProjection(ctx context.Context, pool *pgxpool.Pool) {
	for n := 0; ctx.Err() == nil; n++ {
		_, _ = pool.Exec(ctx, `INSERT INTO applied_offsets (topic, partition, next_offset) VALUES ('votes', 0, $1)
			ON CONFLICT (topic, partition, stripe) DO UPDATE SET next_offset = excluded.next_offset, updated_at = clock_timestamp()`, n)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// readEvents counts the dashboard events a well-behaved client receives.
func readEvents(t *testing.T, url string, n *atomic.Int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: dashboard") {
				n.Add(1)
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
}

// A client that subscribes and then never reads fills its connection's
// buffers; the write of the next event then blocks until the write
// deadline, and the server drops it. Other clients go on receiving.
func TestStreamDropsAClientThatStopsReading(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	stream, url := liveStream(t, handlers.StreamConfig{PushEvery: 2 * time.Millisecond, WriteTimeout: writeTimeout})

	var good atomic.Int64
	readEvents(t, url, &good)
	testutil.Eventually(t, 10*time.Second, "the reading client subscribed", func() (bool, string) {
		return stream.Clients() == 1 && good.Load() > 0, fmt.Sprint(stream.Clients(), " clients, ", good.Load(), " events")
	})

	d := net.Dialer{Control: smallBuffers(syscall.SO_RCVBUF)}
	stalled, err := d.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	start := time.Now()
	if _, err := fmt.Fprintf(stalled, "GET /api/v1/stream HTTP/1.1\r\nHost: votewatch\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the stalled client subscribed", func() (bool, string) {
		return stream.Clients() == 2, fmt.Sprint(stream.Clients(), " clients")
	})
	// Filling the small buffers takes a few dozen events (tens of ms); the
	// drop follows one write timeout later.
	testutil.Eventually(t, 10*writeTimeout, "the stalled client dropped", func() (bool, string) {
		return stream.Clients() == 1, fmt.Sprint(stream.Clients(), " clients")
	})
	t.Logf("a client that stopped reading was dropped %v after it subscribed (write timeout %v)", time.Since(start).Round(time.Millisecond), writeTimeout)

	before := good.Load()
	testutil.Eventually(t, 5*time.Second, "the reading client still receives", func() (bool, string) {
		return good.Load() >= before+10, fmt.Sprint(good.Load()-before, " events since")
	})
}

// One address may hold only MaxPerAddress streams at once.
func TestStreamCapsConnectionsPerAddress(t *testing.T) {
	stream, url := liveStream(t, handlers.StreamConfig{MaxPerAddress: 2})
	var a, b atomic.Int64
	readEvents(t, url, &a)
	readEvents(t, url, &b)
	testutil.Eventually(t, 10*time.Second, "two streams open", func() (bool, string) {
		return stream.Clients() == 2, fmt.Sprint(stream.Clients(), " clients")
	})
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a third stream from the same address: %s (Retry-After %q), want 429 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	if got := stream.Clients(); got != 2 {
		t.Errorf("%d clients after a refused one, want 2", got)
	}
}

// Behind a trusted proxy the per-address cap counts the forwarded
// clients, not the proxy (issue 24 §6).
func TestStreamCapsEachClientBehindATrustedProxy(t *testing.T) {
	proxies, err := handlers.ParseTrustedProxies([]string{"127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	stream, url := liveStream(t, handlers.StreamConfig{MaxPerAddress: 1, TrustedProxies: proxies})
	open := func(client string) *http.Response {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := open("198.51.100.1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first client's stream: %s", resp.Status)
	}
	if resp := open("198.51.100.2"); resp.StatusCode != http.StatusOK {
		t.Errorf("a second client behind the same proxy: %s, want 200", resp.Status)
	}
	if resp := open("198.51.100.1"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the first client's second stream: %s, want 429", resp.Status)
	}
	testutil.Eventually(t, 10*time.Second, "two streams open", func() (bool, string) {
		return stream.Clients() == 2, fmt.Sprint(stream.Clients(), " clients")
	})
}
