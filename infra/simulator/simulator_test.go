package simulator_test

import (
	"slices"
	"testing"
	"time"

	"github.com/votewatch/votewatch/infra/simulator"
)

func TestDefaultElectionIsValid(t *testing.T) {
	cfg := simulator.DefaultElection()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Regions) != 51 {
		t.Errorf("default election has %d regions, want the 50 states and DC", len(cfg.Regions))
	}
}

func TestGenerateSpreadsVotersOverEveryRegion(t *testing.T) {
	e, err := simulator.Generate(simulator.DefaultElection(), 5000, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Voters) != 5000 {
		t.Fatalf("%d voters, want 5000", len(e.Voters))
	}
	perRegion := map[string]int{}
	ids := map[string]bool{}
	for _, v := range e.Voters {
		perRegion[v.Voter.Region().String()]++
		if ids[v.Voter.ID()] {
			t.Fatalf("voter id %s twice", v.Voter.ID())
		}
		ids[v.Voter.ID()] = true
	}
	if len(perRegion) != 51 || perRegion["CA"] <= perRegion["WY"] {
		t.Errorf("voters per region: %v", perRegion)
	}
}

// A restarted simulation must produce the same votes (same ids), so what
// it republishes is recognised as a redelivery.
func TestVotePlanIsReproducible(t *testing.T) {
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	plan := func() []string {
		e, err := simulator.Generate(simulator.DefaultElection(), 800, now)
		if err != nil {
			t.Fatal(err)
		}
		p := simulator.NewVotePlan(e, simulator.Faults{Redeliveries: 0.1, DoubleVotes: 0.1, Malformed: 0.1})
		var out []string
		for {
			msgs, ok := p.Next(now)
			if !ok {
				break
			}
			for _, m := range msgs {
				out = append(out, m.Metadata.Get("key")+" "+string(m.Payload))
			}
		}
		if p.Done() != p.Total() || p.Total() != int(800*simulator.DefaultElection().Turnout) {
			t.Errorf("plan done %d of %d", p.Done(), p.Total())
		}
		return out
	}
	a, b := plan(), plan()
	if !slices.Equal(a, b) {
		t.Fatal("two plans of the same election differ")
	}
	if len(a) <= 576 {
		t.Errorf("faults added no messages: %d", len(a))
	}
}
