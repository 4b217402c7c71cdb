package projections_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/write"
)

// With every voter's votes on one partition, a replay decides the votes
// with domain.Decide on its ledger and COPYs the ballots: it must end exactly
// where domain.Count and the live path do, through every kind of
// rejection, held votes (registration open), second votes, redeliveries,
// reused vote_ids and schedules.
func TestDirectReplayDecidesAsTheLogSays(t *testing.T) {
	t.Parallel()
	runs := 20
	if testing.Short() {
		runs = 5
	}
	for seed := range uint64(runs) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 0xd1ec7))
			log := keyedLog(rng, seed%2 == 0, false)
			checkReplay(t, rng, log)
		})
	}
}

// A voter whose votes are on two partitions (a producer keyed or
// partitioned one otherwise): the vote off its voter's partition is
// misrouted (rule 0), live and in replay alike.
func TestReplayOfAVoterOnTwoPartitionsRefusesTheMisroutedVote(t *testing.T) {
	t.Parallel()
	for _, closed := range []bool{false, true} {
		t.Run(fmt.Sprintf("closed=%v", closed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(7, 0xd1ec7))
			log := keyedLog(rng, closed, true)
			checkReplay(t, rng, log)
		})
	}
}

func checkReplay(t *testing.T, rng *rand.Rand, log *testLog) {
	t.Helper()
	want := domain.Count(log.spec())
	pool := testutil.Pool(t)
	store, err := write.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, rng, store, log)
	if diff := compareOutcome(want, readOutcome(t, pool)); diff != "" {
		t.Fatalf("live projection differs from domain.Count (log:\n%s)\n%s", log, diff)
	}
	rep := replayVerify(t, pool, log)
	if len(rep.Differences) > 0 {
		t.Fatalf("replay differs from live (log:\n%s)\n%s", log, projections.FormatDiffs(rep.Differences))
	}
}

// keyedLog makes an election whose registration closes on every partition
// before any vote, or never, with two votes partitions and votes keyed by
// voter (mixed: one voter's votes also on the other partition).
func keyedLog(rng *rand.Rand, closed, mixed bool) *testLog {
	const voteParts = 2
	l := &testLog{topics: map[string][][]projections.LogRecord{}, events: map[string][][]any{}}
	for _, topic := range domain.EventTopics {
		n := 1
		if topic == domain.TopicVotes {
			n = voteParts
		}
		l.topics[topic] = make([][]projections.LogRecord, n)
		l.events[topic] = make([][]any, n)
	}
	enc := func(e interface{ MarshalJSON() ([]byte, error) }) []byte {
		b, err := e.MarshalJSON()
		if err != nil {
			panic(err) // generated values are valid by construction
		}
		return b
	}
	party, _ := domain.NewParty("Party")
	north, _ := domain.NewRegion("North")
	south, _ := domain.NewRegion("South")
	senate, _ := domain.NewContest("senate", "Senate", domain.KindCandidate, [][]domain.Region{{north}, {south}, nil}[rng.IntN(3)])
	l.add(domain.TopicContests, 0, enc(domain.ContestRegistered{Contest: senate}), domain.ContestRegistered{Contest: senate})
	candidates := []string{"c0", "c1", "c2", "c3"}
	for i, contest := range []string{domain.DefaultContest, domain.DefaultContest, "senate", "senate"} {
		c, _ := domain.NewCandidate(candidates[i], "Candidate", party, "", "", "")
		c, _ = c.InContest(contest)
		l.add(domain.TopicCandidates, 0, enc(domain.CandidateRegistered{Candidate: c}), domain.CandidateRegistered{Candidate: c})
	}
	var voters []string
	for i := range 8 {
		id := fmt.Sprintf("v%d", i)
		voters = append(voters, id)
		if i == 7 {
			continue // never registers
		}
		v, _ := domain.NewVoter(id, "Voter", "female", ruleAt.AddDate(-30-i, 0, 0), []domain.Region{north, south}[i%2], "Town", ruleAt.AddDate(0, -1, 0))
		l.add(domain.TopicVoters, 0, enc(domain.VoterRegistered{Voter: v}), domain.VoterRegistered{Voter: v})
	}
	if closed {
		marker, _ := domain.NewRegistrationClosed(1, ruleAt)
		for _, topic := range domain.RegistrationTopics {
			l.add(topic, 0, enc(marker), marker)
		}
	}

	var cast []domain.VoteCast
	for n := range 40 {
		at := ruleAt.Add(time.Duration(n)*time.Minute + time.Duration(rng.IntN(1e9)))
		voter := voters[rng.IntN(len(voters))]
		partition := int(domain.VotePartition(voter, voteParts))
		if rng.IntN(10) == 0 {
			open := ruleAt.Add(time.Duration(rng.IntN(30)) * time.Minute)
			schedule, _ := domain.NewElectionScheduled(open, open.Add(time.Duration(5+rng.IntN(30))*time.Minute))
			l.add(domain.TopicVotes, rng.IntN(voteParts), enc(schedule), schedule)
		}
		if len(cast) > 0 && rng.IntN(6) == 0 {
			ev := cast[rng.IntN(len(cast))] // a redelivery
			l.addAt(domain.TopicVotes, int(domain.VotePartition(ev.Vote.VoterID(), voteParts)), enc(ev), ev, at)
			continue
		}
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
		if len(cast) > 0 && rng.IntN(10) == 0 {
			// The voter's own vote_id used again for another choice.
			first := cast[rng.IntN(len(cast))]
			id, voter, partition = first.Vote.ID(), first.Vote.VoterID(), int(domain.VotePartition(first.Vote.VoterID(), voteParts))
		}
		candidate := candidates[rng.IntN(len(candidates))]
		if rng.IntN(10) == 0 {
			candidate = "c-none"
		}
		castAt := at
		if rng.IntN(15) == 0 {
			castAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
		}
		v, _ := domain.NewVote(id, voter, candidate, castAt)
		contest := []string{domain.DefaultContest, domain.DefaultContest, "senate", "nowhere"}[rng.IntN(4)]
		v, _ = v.InContest(contest)
		if rng.IntN(3) == 0 {
			region := []domain.Region{north, north, south}[rng.IntN(3)]
			station, _ := domain.NewStation("s-"+region.String(), region)
			v = v.WithStation(station)
		}
		ev := domain.VoteCast{Vote: v}
		cast = append(cast, ev)
		l.addAt(domain.TopicVotes, partition, enc(ev), ev, at)
	}
	if mixed {
		// v0 (partition 0) votes on partition 1 too; in a contest that does
		// not exist, so that the live path's delivery order cannot change
		// the outcome.
		for i, p := range []int{0, 1} {
			v, _ := domain.NewVote(fmt.Sprintf("00000000-0000-4000-8000-00000000099%d", i), "v0", "c1", ruleAt.Add(time.Hour))
			v, _ = v.InContest("nowhere")
			ev := domain.VoteCast{Vote: v}
			l.addAt(domain.TopicVotes, p, enc(ev), ev, ruleAt.Add(time.Hour))
		}
	}
	return l
}
