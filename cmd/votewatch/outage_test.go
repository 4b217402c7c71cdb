package main

import (
	"context"
	"fmt"
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
func TestDatabaseOutageLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and starts a PostgreSQL cluster")
	}
	// Not t.TempDir: the server may run as the postgres user, who must be
	// able to reach the directory.
	dir, err := os.MkdirTemp("", "votewatch-outage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := postgres.ClusterConfig{Dir: dir, SocketOnly: true, Logger: testLogger()}
	cluster, err := postgres.StartCluster(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop(context.Background()) })
	p := startSystem(t, system{partitions: 8, projector: true, dsn: cluster.DSN()})

	e, err := simulator.Generate(simulator.DefaultElection(), 20_000, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	publishElection(t, p.kafka, e, nil, true, 0)
	testutil.Eventually(t, 60*time.Second, "the register projected", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.RegisteredVoters == int64(len(e.Voters)), ""
	})
	plan := simulator.NewVotePlan(e, simulator.Faults{Redeliveries: 0.01, DoubleVotes: 0.01})
	want := truth{rejected: map[string]int64{"duplicate_voter": 0, "unknown_voter": 0, "unknown_candidate": 0}}
	if err := publishWithFaults(p.kafka, e, plan, 3_000, &want); err != nil {
		t.Fatal(err)
	}
	waitForVotes(t, p, 3_000)

	// Votes keep arriving while the database is down.
	var wg sync.WaitGroup
	var pubErr error
	wg.Go(func() { pubErr = publishWithFaults(p.kafka, e, plan, 7_000, &want) })
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
	time.Sleep(5 * time.Second)
	if cluster, err = postgres.StartCluster(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	testutil.Eventually(t, 90*time.Second, "the projector catching up", func() (bool, string) {
		var s summaryResp
		if code := p.get(t, "/api/v1/summary", &s); code != http.StatusOK {
			return false, fmt.Sprintf("summary: %d", code)
		}
		return s.VotesCast == want.counted && s.Rejected["duplicate_voter"] == want.rejected["duplicate_voter"],
			fmt.Sprintf("%d/%d votes, %d/%d duplicates", s.VotesCast, want.counted, s.Rejected["duplicate_voter"], want.rejected["duplicate_voter"])
	})
	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if s.DeadLettered != 0 {
		t.Errorf("%d messages dead-lettered during a database outage; an outage must only delay", s.DeadLettered)
	}
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
}
