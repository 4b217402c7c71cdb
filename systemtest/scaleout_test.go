package systemtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/testutil"
)

// Projector processes (the real binary, as separate OS processes) form one
// consumer group: they share the partitions, and when one dies mid-stream
// the others take its partitions over from its last commit, so the tallies
// end exact: nothing lost, nothing counted twice.
func TestProjectorProcessesShareThePartitionsAndSurviveOneDying(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const partitions, processes = 12, 3
	p := startSystem(t, system{partitions: partitions})
	project := func() *testutil.Process {
		return testutil.Start(t, "--log-level", "warn", "project", "--min-cell", "1",
			"--database-url", p.dsn, "--kafka-brokers", strings.Join(p.kafka.Brokers, ","),
			"--group", "test-scale", "--session-timeout", "6s", "--batch-size", "100")
	}
	var procs []*testutil.Process
	for range processes {
		procs = append(procs, project())
	}

	e, err := simulator.Generate(simulator.OneRaceElection(), 12_000, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plan := simulator.NewVotePlan(e, simulator.Faults{})
	publishElection(t, p.kafka, e, plan, true, 3_000)

	testutil.Eventually(t, 60*time.Second, "three processes sharing the votes partitions", func() (bool, string) {
		members, err := kafka.GroupAssignment(context.Background(), p.kafka, "test-scale.votes", "votes")
		if err != nil {
			return false, err.Error()
		}
		var all []int32
		for _, parts := range members {
			if len(parts) == 0 {
				return false, fmt.Sprintf("a member without partitions: %v", members)
			}
			all = append(all, parts...)
		}
		slices.Sort(all)
		return len(members) == processes && len(slices.Compact(all)) == partitions, fmt.Sprintf("%v", members)
	})
	waitForVotes(t, p, 3_000)

	// One process dies while votes keep arriving; the others must take its
	// partitions over.
	publishDone := make(chan struct{})
	go func() { defer close(publishDone); publishElection(t, p.kafka, e, plan, false, 5_000) }()
	testutil.Eventually(t, 60*time.Second, "the new votes being counted", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast > 3_000, fmt.Sprint(s.VotesCast, " votes")
	})
	procs[0].Kill()
	<-publishDone

	waitForVotes(t, p, 8_000)
	testutil.Eventually(t, 60*time.Second, "the survivors owning every partition", func() (bool, string) {
		members, err := kafka.GroupAssignment(context.Background(), p.kafka, "test-scale.votes", "votes")
		return err == nil && len(members) == processes-1, fmt.Sprintf("%v %v", members, err)
	})
	// A rebalance settled; once every message is acknowledged, redelivered
	// ones have been (not) counted.
	p.waitQuiet(t, "test-scale")
	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if s.VotesCast != 8_000 {
		t.Errorf("votes_cast = %d, want 8000 (every published vote once)", s.VotesCast)
	}
	for reason, n := range s.Rejected {
		if n != 0 {
			t.Errorf("rejected[%s] = %d after redelivery, want 0", reason, n)
		}
	}
	// The survivors' tallies equal a rebuild from the log, table by table.
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
	for _, proc := range procs[1:] {
		if proc.Exited() {
			t.Error("a surviving projector process exited")
		}
		// SIGTERM is a graceful stop: exit status 0.
		if err := proc.Stop(); err != nil {
			t.Errorf("projector after SIGTERM: %v", err)
		}
	}
}
