package simulator_test

import (
	"slices"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/simulator"
)

func TestDefaultElectionIsValid(t *testing.T) {
	cfg := simulator.OneRaceElection()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Regions) != 51 {
		t.Errorf("default election has %d regions, want the 50 states and DC", len(cfg.Regions))
	}
}

func TestGenerateSpreadsVotersOverEveryRegion(t *testing.T) {
	e, err := simulator.Generate(simulator.OneRaceElection(), 5000, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC))
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
		e, err := simulator.Generate(simulator.OneRaceElection(), 800, now)
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
		if p.Done() != p.Total() || p.Total() != int(800*simulator.OneRaceElection().Turnout) {
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

// The default election is a general election: the presidential race
// everywhere, a Senate race in a third of the states, a measure in a few;
// each voting voter votes once in every contest open to their state.
func TestGeneralElectionPutsEveryOpenContestOnTheBallot(t *testing.T) {
	cfg := simulator.DefaultElection()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	e, err := simulator.Generate(cfg, 3000, now)
	if err != nil {
		t.Fatal(err)
	}
	senates, measures := 0, 0
	open := map[string]map[string]bool{}
	for _, c := range e.Contests {
		if c.Contest.Kind().String() == "measure" {
			measures++
		} else {
			senates++
		}
		open[c.Contest.ID()] = map[string]bool{}
		for _, r := range c.Contest.Regions() {
			open[c.Contest.ID()][r.String()] = true
		}
	}
	if senates != 17 || measures < 3 {
		t.Errorf("%d Senate races and %d measures, want 17 (a third of 51) and a few", senates, measures)
	}
	region := map[string]string{}
	for _, v := range e.Voters {
		region[v.Voter.ID()] = v.Voter.Region().String()
	}
	plan := simulator.NewVotePlan(e, simulator.Faults{})
	perVoter := map[string]map[string]int{}
	for {
		msgs, ok := plan.Next(now)
		if !ok {
			break
		}
		for _, m := range msgs {
			ev, err := domain.DecodeVoteCast(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			v := ev.Vote
			if perVoter[v.VoterID()] == nil {
				perVoter[v.VoterID()] = map[string]int{}
			}
			perVoter[v.VoterID()][v.ContestID()]++
			if v.ContestID() != domain.DefaultContest && !open[v.ContestID()][region[v.VoterID()]] {
				t.Fatalf("voter of %s votes in %s", region[v.VoterID()], v.ContestID())
			}
		}
	}
	for voter, contests := range perVoter {
		want := 1
		for _, regions := range open {
			if regions[region[voter]] {
				want++
			}
		}
		if len(contests) != want || contests[domain.DefaultContest] != 1 {
			t.Fatalf("voter %s votes in %v, want the default contest and the %d open to %s", voter, contests, want-1, region[voter])
		}
	}
}
