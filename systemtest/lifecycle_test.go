package systemtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votewatch/votewatch/internal/testutil"
)

// The election's lifecycle, driven through the commands an operator runs:
// a vote for a voter not registered yet is held, not rejected; closing
// registration refuses a later registration and rejects the held vote; the
// schedule rejects votes cast outside the polls; a vote dated far from when
// it was logged is refused whatever the schedule. Replay agrees.
func TestElectionLifecycle(t *testing.T) {
	p := startPipeline(t, 4)
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Truncate(time.Second).Format(time.RFC3339) }
	castVote := func(n int, voter, candidate, castAt string) *kgo.Record {
		v := vote(n, voter, candidate)
		v["cast_at"] = castAt
		return record("votes", voter, v)
	}
	voter := func(id string) *kgo.Record {
		return record("voters", id, map[string]string{
			"voter_id": id, "name": "Person", "gender": "female", "birth_date": "1980-05-17",
			"region": "North", "city": "Town", "registered_at": at(-48 * time.Hour),
		})
	}
	p.produce(t,
		record("candidates", "c-ada", map[string]string{"candidate_id": "c-ada", "name": "Ada", "party": "Civic"}),
		voter("v-1"), voter("v-2"), voter("v-3"), voter("v-4"),
		castVote(1, "v-1", "c-ada", at(-time.Hour)),
		castVote(2, "latecomer", "c-ada", at(-time.Hour)),
	)
	testutil.Eventually(t, 60*time.Second, "v-1 counted, the latecomer held", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast == 1 && s.Rejected["unknown_voter"] == 0, fmt.Sprintf("%+v", s)
	})

	if code, out := p.kafkaCLI(t, "close-registration"); code != 0 || !strings.Contains(out, "registration closed") {
		t.Fatalf("close-registration: exit %d: %s", code, out)
	}
	if code, out := p.kafkaCLI(t, "schedule", "--polls-open", at(-2*time.Hour), "--polls-close", at(-30*time.Minute)); code != 0 {
		t.Fatalf("schedule: exit %d: %s", code, out)
	}
	p.produce(t,
		voter("latecomer"),                               // after the close marker: refused
		castVote(3, "v-2", "c-ada", at(-time.Hour)),      // inside the polls
		castVote(4, "v-3", "c-ada", at(-10*time.Minute)), // after they closed
		castVote(5, "v-4", "c-ada", "9999-12-31T00:00:00Z"),
	)
	want := map[string]int64{"unknown_voter": 1, "outside_polls": 1, "implausible_time": 1, "duplicate_voter": 0, "unknown_candidate": 0}
	testutil.Eventually(t, 60*time.Second, "every vote decided", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		ok := s.VotesCast == 2
		for reason, n := range want {
			ok = ok && s.Rejected[reason] == n
		}
		return ok, fmt.Sprintf("%+v", s)
	})
	var st struct {
		Registration struct {
			Closed               bool  `json:"closed"`
			HeldVotes            int64 `json:"held_votes"`
			RefusedRegistrations int64 `json:"refused_registrations"`
		} `json:"registration"`
	}
	p.get(t, "/api/v1/status", &st)
	if !st.Registration.Closed || st.Registration.HeldVotes != 0 || st.Registration.RefusedRegistrations != 1 {
		t.Errorf("status registration = %+v, want closed, nothing held, 1 refused", st.Registration)
	}
	var timeline struct {
		Timeline []struct {
			Minute time.Time `json:"minute"`
		} `json:"timeline"`
	}
	p.get(t, "/api/v1/timeline?minutes=1440", &timeline)
	for _, m := range timeline.Timeline {
		if m.Minute.After(now.Add(time.Minute)) {
			t.Errorf("the timeline reaches %s: a refused vote stretched it", m.Minute)
		}
	}
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Fatalf("replay --verify: exit %d:\n%s", code, out)
	}

	// Every operator action that changed what is published is on record,
	// with who and from where; a replay that swaps adds its own.
	if code, out := p.cli(t, "replay"); code != 0 {
		t.Fatalf("replay: exit %d:\n%s", code, out)
	}
	testutil.Eventually(t, 30*time.Second, "the operator actions recorded", func() (bool, string) {
		var audit struct {
			Actions []struct {
				Action, Who, Host, Result string
			} `json:"actions"`
		}
		p.get(t, "/api/v1/audit", &audit)
		seen := map[string]bool{}
		for _, a := range audit.Actions {
			if a.Who != "" && a.Host != "" && a.Result == "ok" {
				seen[a.Action] = true
			}
		}
		return seen["close_registration"] && seen["schedule"] && seen["replay_swap"], fmt.Sprintf("%+v", audit.Actions)
	})
}

// kafkaCLI runs a votewatch command that only talks to Kafka.
func (p *pipeline) kafkaCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	args = append(args, "--kafka-brokers", strings.Join(p.kafka.Brokers, ","))
	return testutil.Run(t, append([]string{"--log-level", "warn"}, args...)...)
}
