package systemtest

import (
	"context"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/testutil"
)

// PostgreSQL stops for several seconds while votes flow: the projector
// retries with backoff (never dead-letters a vote for it), /readyz says
// not ready meanwhile, and once the database is back everything is counted
// exactly once.
// startPrivateCluster starts a PostgreSQL of the test's own (one it may
// stop), stopped and removed at cleanup. Not in t.TempDir: the server may
// run as the postgres user, who must be able to reach the directory.
func startPrivateCluster(t *testing.T, socketOnly bool) (*postgres.Cluster, postgres.ClusterConfig) {
	t.Helper()
	dir, err := os.MkdirTemp("", "votewatch-private-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := postgres.ClusterConfig{Dir: dir, SocketOnly: socketOnly, Logger: testLogger()}
	cluster, err := postgres.StartCluster(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop(context.Background()) })
	return cluster, cfg
}

func TestDatabaseOutageLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and starts a PostgreSQL cluster")
	}
	ctx := context.Background()
	cluster, cfg := startPrivateCluster(t, true)
	p := startSystem(t, system{partitions: 8, projector: true, dsn: cluster.DSN()})

	e := p.registerElection(t, 20_000)
	plan := simulator.NewVotePlan(e, simulator.Faults{Redeliveries: 0.01, DoubleVotes: 0.01})
	want := newTruth()
	if err := publishWithFaults(p.kafka, e, plan, 3_000, &want); err != nil {
		t.Fatal(err)
	}
	waitForVotes(t, p, 3_000)

	// Votes keep arriving while the database is down.
	var wg sync.WaitGroup
	var pubErr error
	wg.Go(func() { pubErr = publishWithFaults(p.kafka, e, plan, 7_000, &want) })
	failed := p.failedBatches(t)
	if err := cluster.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "/readyz reporting the outage", func() (bool, string) {
		resp, err := http.Get(p.api + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable, resp.Status
	})
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	p.waitFailing(t, failed, 3, "the projector failing batches against the outage")
	if _, err := postgres.StartCluster(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p.settle(t, want, 90*time.Second, "the projector catching up")
	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if s.DeadLettered != 0 {
		t.Errorf("%d messages dead-lettered during a database outage; an outage must only delay", s.DeadLettered)
	}
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
}
