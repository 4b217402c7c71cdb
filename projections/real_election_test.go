package projections_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/write"
)

// Issue 24's done-when, live and in replay: an early-voting election (polls
// open from 20 to 9 days ago) whose offline station uploads today the votes
// cast 12 days ago counts every vote cast in the window and rejects the
// others as outside_polls, not implausible_time; a vote backdated into the
// window after its station's close report is after_station_close; a vote
// from a station nobody registered, or stamped with another region than
// its station opened with, is unknown_station. Every read order of the
// topics decides the same, and so does the replay.
func TestAnEarlyVotingElectionWithALateUpload(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Microsecond)
	opens, closes := now.AddDate(0, 0, -20), now.AddDate(0, 0, -9)
	north := must(domain.NewRegion("North"))
	south := must(domain.NewRegion("South"))
	offline := must(domain.NewStation("offline-1", north))
	ghost := must(domain.NewStation("ghost-station", north))
	lying := must(domain.NewStation("offline-1", south)) // offline-1 reported North

	l := &testLog{topics: map[string][][]projections.LogRecord{}, events: map[string][][]any{}}
	for _, topic := range domain.EventTopics {
		l.topics[topic] = make([][]projections.LogRecord, 1)
		l.events[topic] = make([][]any, 1)
	}
	enc := func(e interface{ MarshalJSON() ([]byte, error) }) []byte { return must(e.MarshalJSON()) }
	party := must(domain.NewParty("Party"))
	cand := must(must(domain.NewCandidate("c1", "Candidate", party, "", "", "")).InContest(domain.DefaultContest))
	l.add(domain.TopicCandidates, 0, enc(domain.CandidateRegistered{Candidate: cand}), domain.CandidateRegistered{Candidate: cand})
	for i := range 20 {
		home := north
		if i >= 18 {
			home = south
		}
		v := must(domain.NewVoter(fmt.Sprintf("v%02d", i), "Voter", "female", now.AddDate(-30, 0, 0), home, "Town", now.AddDate(0, -2, 0)))
		l.add(domain.TopicVoters, 0, enc(domain.VoterRegistered{Voter: v}), domain.VoterRegistered{Voter: v})
	}
	// The station opens before the polls (its opening on the votes
	// partition, its report on the stations topic), and closes after its
	// upload.
	opened := must(domain.NewStationReport(offline, false, now.AddDate(0, 0, -26)))
	l.addAt(domain.TopicStations, 0, enc(opened), opened, opened.ReportedAt())
	opening := must(domain.NewStationOpened(now.AddDate(0, 0, -26), offline))
	l.addAt(domain.TopicVotes, 0, enc(opening), opening, opening.OpenedAt())
	marker := must(domain.NewRegistrationClosed(1, now.AddDate(0, 0, -25)))
	for _, topic := range domain.RegistrationTopics {
		l.add(topic, 0, enc(marker), marker)
	}
	schedule := must(domain.NewElectionScheduled(opens, closes))
	l.addAt(domain.TopicVotes, 0, enc(schedule), schedule, now.AddDate(0, 0, -21))

	want := map[string]string{}
	n := 0
	addVote := func(voter string, castAt, logged time.Time, st domain.Station, outcome string) {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
		n++
		v := must(must(domain.NewVote(id, voter, "c1", castAt)).InContest(domain.DefaultContest))
		if st != (domain.Station{}) {
			v = v.WithStation(st)
		}
		ev := domain.VoteCast{Vote: v}
		l.addAt(domain.TopicVotes, int(domain.VotePartition(voter, 1)), enc(ev), ev, logged)
		want[id] = outcome
	}
	// Today's upload: ten votes cast 12 days ago, in the window; one cast
	// before the polls opened, one after they closed.
	upload := now.Add(-time.Hour)
	for i := range 10 {
		addVote(fmt.Sprintf("v%02d", i), now.AddDate(0, 0, -12).Add(time.Duration(i)*time.Minute), upload.Add(time.Duration(i)*time.Millisecond), offline, "counted")
	}
	addVote("v10", opens.Add(-time.Hour), upload.Add(20*time.Millisecond), offline, domain.RejectOutsidePolls.String())
	addVote("v11", closes.Add(time.Hour), upload.Add(30*time.Millisecond), offline, domain.RejectOutsidePolls.String())
	// A vote before any plausible election, and one in the future.
	addVote("v12", domain.EarliestPlausible().Add(-time.Hour), upload.Add(40*time.Millisecond), offline, domain.RejectImplausibleTime.String())
	addVote("v13", now.Add(time.Hour), upload.Add(50*time.Millisecond), offline, domain.RejectImplausibleTime.String())
	// A ghost station's vote, and one stamped with another region.
	addVote("v15", now.AddDate(0, 0, -15), now.Add(-time.Hour), ghost, domain.RejectUnknownStation.String())
	addVote("v18", now.AddDate(0, 0, -15), now.Add(-time.Hour), lying, domain.RejectUnknownStation.String())
	// Then the station closes (its close marker on the votes partition, its
	// close report on the stations topic); a vote backdated into the window
	// after that never counts.
	closing := must(domain.NewStationClosed(now.Add(-30*time.Minute), offline.ID()))
	l.addAt(domain.TopicVotes, 0, enc(closing), closing, closing.ClosedAt())
	closed := must(domain.NewStationReport(offline, true, now.Add(-30*time.Minute)))
	l.addAt(domain.TopicStations, 0, enc(closed), closed, closed.ReportedAt())
	addVote("v14", now.AddDate(0, 0, -15), now.Add(-10*time.Minute), offline, domain.RejectAfterStationClose.String())

	spec := domain.Count(l.spec())
	for id, w := range want {
		got := spec.Rejected[id].String()
		if slices.ContainsFunc(mapsValues(spec.Counted), func(v domain.Vote) bool { return v.ID() == id }) {
			got = "counted"
		}
		if got != w {
			t.Errorf("domain.Count: vote %s is %q, want %q", id, got, w)
		}
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			pool := testutil.Pool(t)
			store := must(write.NewStore(pool))
			deliver(t, rand.New(rand.NewPCG(seed, 24)), store, l)
			got := readOutcome(t, pool)
			if diff := compareOutcome(spec, got); diff != "" {
				t.Fatalf("live differs from domain.Count:\n%s", diff)
			}
			for id, w := range want {
				if w == "counted" {
					continue
				}
				if got.rejected[id] != w {
					t.Errorf("live: vote %s rejected %q, want %q", id, got.rejected[id], w)
				}
			}
			if len(got.counted) != 10 {
				t.Errorf("live counted %d ballots, want the 10 cast in the window", len(got.counted))
			}
			checkSelf(t, pool)
			if rep := replayVerify(t, pool, l); len(rep.Differences) > 0 {
				t.Fatalf("replay differs from live:\n%s", projections.FormatDiffs(rep.Differences))
			}
		})
	}
}

func mapsValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// must unwraps a constructor's result in a test's fixed, valid inputs.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
