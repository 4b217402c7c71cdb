package app_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
)

// Every operator action that changes the election is on record in the
// operator actions topic, whichever command does it (issue 24 §5): importing the
// roll, closing registration (on its own or with the import), the
// schedule, and a station's close.

// startOperatorLog is a broker and a publisher to the operator actions topic.
func startOperatorLog(t *testing.T) (kafka.Config, *kafka.Publisher) {
	t.Helper()
	kcfg := testutil.Kafka(t, 2)
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return kcfg, pub
}

// actions reads the operator actions topic's first want actions.
func actions(t *testing.T, kcfg kafka.Config, want int) []domain.OperatorActed {
	t.Helper()
	var out []domain.OperatorActed
	for _, rec := range testutil.ReadTopic(t, kcfg, domain.TopicOperatorActions, want, 30*time.Second) {
		a, err := domain.DecodeOperatorActed(rec.Value)
		if err != nil {
			t.Fatalf("operator action message %s: %v", rec.Value, err)
		}
		if a.Who() == "" || a.Host() == "" || a.At().IsZero() {
			t.Errorf("action %s lacks who, host or when", a.Action())
		}
		out = append(out, a)
	}
	return out
}

func names(acts []domain.OperatorActed) []string {
	var out []string
	for _, a := range acts {
		out = append(out, a.Action()+": "+a.Result())
	}
	return out
}

func testRoll(t *testing.T) app.Roll {
	t.Helper()
	party, _ := domain.NewParty("Civic")
	c, err := domain.NewCandidate("c-ada", "Ada", party, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	region, _ := domain.NewRegion("North")
	v, err := domain.NewVoter("v-1", "Vera", "female", time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC), region, "Town", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return app.Roll{Candidates: []domain.CandidateRegistered{{Candidate: c}}, Voters: []domain.VoterRegistered{{Voter: v}}}
}

func TestImportingTheRollIsRecorded(t *testing.T) {
	t.Parallel()
	kcfg, pub := startOperatorLog(t)
	if err := app.PublishRoll(context.Background(), slog.New(slog.DiscardHandler), pub, testRoll(t), false, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := actions(t, kcfg, 1)
	if !slices.Equal(names(got), []string{domain.ActionImportRoll + ": ok"}) {
		t.Fatalf("operator actions = %v, want the import", names(got))
	}
	if d := got[0].Detail(); !strings.Contains(d, "1 candidates") || !strings.Contains(d, "1 voters") {
		t.Errorf("import detail %q, want what was imported", d)
	}
}

func TestImportWithCloseRegistrationRecordsBoth(t *testing.T) {
	t.Parallel()
	kcfg, pub := startOperatorLog(t)
	if err := app.PublishRoll(context.Background(), slog.New(slog.DiscardHandler), pub, testRoll(t), true, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := names(actions(t, kcfg, 2)); !slices.Equal(got, []string{domain.ActionImportRoll + ": ok", domain.ActionCloseRegistration + ": ok"}) {
		t.Errorf("operator actions = %v, want the import then the close", got)
	}
}

func TestClosingRegistrationAndTheScheduleAreRecorded(t *testing.T) {
	t.Parallel()
	kcfg, pub := startOperatorLog(t)
	if err := app.CloseRegistration(pub, io.Discard); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	schedule, err := domain.NewElectionScheduled(now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Schedule(pub, schedule, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := actions(t, kcfg, 2)
	if !slices.Equal(names(got), []string{domain.ActionCloseRegistration + ": ok", domain.ActionSchedule + ": ok"}) {
		t.Fatalf("operator actions = %v, want the close then the schedule", names(got))
	}
	if d := got[1].Detail(); !strings.Contains(d, now.Add(-time.Hour).UTC().Format(time.RFC3339)) {
		t.Errorf("schedule detail %q, want the polls' times", d)
	}
}

// A station's close is recorded with the close itself, through the
// intake's outbox: infra/outbox's TestAStationsCloseFollowsItsVotesOnEveryPartition.

type nopIntake struct{}

func (nopIntake) Accept(context.Context, string, []domain.VoteCast) (int, error) { return 0, nil }

func (nopIntake) CloseStation(context.Context, string, domain.StationReported) (bool, error) {
	return true, nil
}
