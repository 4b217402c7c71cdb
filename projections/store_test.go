package projections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/write"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var castAt = time.Date(2026, 11, 3, 14, 5, 0, 0, time.UTC)

// fixture is a store over a fresh database with two candidates and five
// voters registered: v1–v3 in region A, v4–v5 in region B, each topic of
// one partition. setup closes registration; setupOpen leaves it open.
type fixture struct {
	pool    *pgxpool.Pool
	seed    *testutil.Seeder
	store   *write.Store
	results *read.Results
}

// registrationEnd is the next offset of the voters topic.
func (f *fixture) registrationEnd() int64 { return f.seed.Next(domain.TopicVoters) }

func setup(t *testing.T) *fixture {
	t.Helper()
	f := setupOpen(t)
	f.closeRegistration(t, domain.TopicContests, 0)
	f.closeRegistration(t, domain.TopicCandidates, 2)
	f.closeRegistration(t, domain.TopicVoters, f.registrationEnd())
	return f
}

// closeRegistration applies a close marker at offset of topic's only
// partition.
func (f *fixture) closeRegistration(t *testing.T, topic string, offset int64) {
	t.Helper()
	f.seed.CloseRegistrationAt(t, topic, offset, castAt.Add(-time.Hour))
}

func setupOpen(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{pool: testutil.Pool(t)}
	f.seed = testutil.NewSeeder(t, f.pool)
	f.store, f.results = f.seed.Store, f.seed.Results
	f.seed.Candidates(t, testutil.Candidate(t, "c1", "Candidate c1", "Civic Alliance", ""), testutil.Candidate(t, "c2", "Candidate c2", "Civic Alliance", ""))
	f.register(t, "v1", "A")
	f.register(t, "v2", "A")
	f.register(t, "v3", "A")
	f.register(t, "v4", "B")
	f.register(t, "v5", "B")
	return f
}

func (f *fixture) register(t *testing.T, voterID, region string) {
	t.Helper()
	f.seed.Voters(t, testutil.Voter(t, voterID, "Voter "+voterID, region, "Springfield", castAt.AddDate(-40, 0, 0), castAt.AddDate(0, -1, 0)))
}

// vote builds a vote envelope; n makes the vote_id.
func (f *fixture) vote(t *testing.T, n int, voterID, candidateID string) projections.Envelope[domain.VoteCast] {
	t.Helper()
	return f.seed.Vote(t, n, voterID, candidateID, "", castAt)
}

// snapshot is every figure the read side serves.
type snapshot struct {
	Summary    read.Summary
	Candidates []read.CandidateResult
	Regions    []read.RegionResult
}

func (f *fixture) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	s, err := f.results.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.UpdatedAt = time.Time{} // moves with every apply, even a no-op
	c, err := f.results.Candidates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.results.Regions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{s, c, r}
}

func (f *fixture) votesFor(t *testing.T, candidateID string) int64 {
	t.Helper()
	for _, c := range f.snapshot(t).Candidates {
		if c.CandidateID == candidateID {
			return c.Votes
		}
	}
	t.Fatalf("candidate %s missing", candidateID)
	return 0
}

func TestApplyVotes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		batches      func(f *fixture, t *testing.T) [][]projections.Envelope[domain.VoteCast]
		wantC1       int64
		wantC2       int64
		wantRejected map[domain.RejectionReason]int64
	}{
		{
			name: "each voter's vote counts for their candidate",
			batches: func(f *fixture, t *testing.T) [][]projections.Envelope[domain.VoteCast] {
				return [][]projections.Envelope[domain.VoteCast]{{f.vote(t, 1, "v1", "c1"), f.vote(t, 2, "v2", "c2"), f.vote(t, 3, "v4", "c1")}}
			},
			wantC1: 2, wantC2: 1,
		},
		{
			name: "first vote of a voter wins, a later one is rejected as duplicate_voter",
			batches: func(f *fixture, t *testing.T) [][]projections.Envelope[domain.VoteCast] {
				return [][]projections.Envelope[domain.VoteCast]{{f.vote(t, 1, "v1", "c1")}, {f.vote(t, 2, "v1", "c2")}}
			},
			wantC1: 1, wantRejected: map[domain.RejectionReason]int64{domain.RejectDuplicateVoter: 1},
		},
		{
			name: "two votes of one voter in one batch: the earlier in the log wins",
			batches: func(f *fixture, t *testing.T) [][]projections.Envelope[domain.VoteCast] {
				return [][]projections.Envelope[domain.VoteCast]{{f.vote(t, 1, "v1", "c2"), f.vote(t, 2, "v1", "c1")}}
			},
			wantC2: 1, wantRejected: map[domain.RejectionReason]int64{domain.RejectDuplicateVoter: 1},
		},
		{
			name: "the same vote_id delivered again changes nothing, across and within batches",
			batches: func(f *fixture, t *testing.T) [][]projections.Envelope[domain.VoteCast] {
				a, b := f.vote(t, 1, "v1", "c1"), f.vote(t, 2, "v2", "c1")
				return [][]projections.Envelope[domain.VoteCast]{{a, b, a}, {b}, {a, a}}
			},
			wantC1: 2,
		},
		{
			name: "a redelivered rejection is recorded once",
			batches: func(f *fixture, t *testing.T) [][]projections.Envelope[domain.VoteCast] {
				first, second := f.vote(t, 1, "v3", "c1"), f.vote(t, 2, "v3", "c2")
				return [][]projections.Envelope[domain.VoteCast]{{first, second}, {second}, {second, first}}
			},
			wantC1: 1, wantRejected: map[domain.RejectionReason]int64{domain.RejectDuplicateVoter: 1},
		},
		{
			name: "unknown voter and unknown candidate are rejected once registration is complete",
			batches: func(f *fixture, t *testing.T) [][]projections.Envelope[domain.VoteCast] {
				return [][]projections.Envelope[domain.VoteCast]{
					{f.vote(t, 1, "nobody", "c1"), f.vote(t, 2, "v5", "c-none"), f.vote(t, 3, "v4", "c2")},
					{f.vote(t, 1, "nobody", "c1")},
				}
			},
			wantC2: 1, wantRejected: map[domain.RejectionReason]int64{domain.RejectUnknownVoter: 1, domain.RejectUnknownCandidate: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			for _, batch := range tt.batches(f, t) {
				res, err := f.store.ApplyVotes(context.Background(), batch)
				if err != nil {
					t.Fatal(err)
				}
				if res.Held != 0 {
					t.Fatalf("held %d votes with registration closed", res.Held)
				}
			}
			s := f.snapshot(t)
			if got, want := f.votesFor(t, "c1"), tt.wantC1; got != want {
				t.Errorf("c1 votes = %d, want %d", got, want)
			}
			if got, want := f.votesFor(t, "c2"), tt.wantC2; got != want {
				t.Errorf("c2 votes = %d, want %d", got, want)
			}
			if got, want := s.Summary.VotesCast, tt.wantC1+tt.wantC2; got != want {
				t.Errorf("votes cast = %d, want %d", got, want)
			}
			for _, reason := range domain.RejectionReasons() {
				if got, want := s.Summary.Rejected[reason], tt.wantRejected[reason]; got != want {
					t.Errorf("rejected %s = %d, want %d", reason, got, want)
				}
			}
			var regionSum int64
			for _, r := range s.Regions {
				var tallied int64
				for _, tl := range r.Tallies {
					tallied += tl.Votes
				}
				if tallied != r.VotesCast {
					t.Errorf("region %s: tallies sum to %d, votes_cast %d", r.Region, tallied, r.VotesCast)
				}
				regionSum += r.VotesCast
			}
			if regionSum != s.Summary.VotesCast {
				t.Errorf("regions sum to %d votes, summary says %d", regionSum, s.Summary.VotesCast)
			}
		})
	}
}

func TestApplyVotesTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	batch := []projections.Envelope[domain.VoteCast]{
		f.vote(t, 1, "v1", "c1"), f.vote(t, 2, "v2", "c2"), f.vote(t, 3, "v2", "c1"),
		f.vote(t, 4, "v4", "c1"), f.vote(t, 5, "ghost", "c1"), f.vote(t, 6, "v5", "c9"),
	}
	if _, err := f.store.ApplyVotes(ctx, batch); err != nil {
		t.Fatal(err)
	}
	before := f.snapshot(t)
	res, err := f.store.ApplyVotes(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 {
		t.Errorf("re-applying accepted %d votes, want 0", res.Accepted)
	}
	after := f.snapshot(t)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("re-applying the batch changed the projection:\nbefore %+v\nafter  %+v", before, after)
	}
	if got, want := before.Summary.VotesCast, int64(3); got != want {
		t.Errorf("votes cast = %d, want %d", got, want)
	}
}

func TestVoteIsHeldUntilItsVoterRegisters(t *testing.T) {
	t.Parallel()
	f := setupOpen(t)
	ctx := context.Background()

	// v6 votes before its registration is read: the vote is held, and so is
	// v6's second vote behind it, while v1's vote counts at once.
	early, second := f.vote(t, 1, "v6", "c1"), f.vote(t, 3, "v6", "c2")
	res, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{f.vote(t, 2, "v1", "c2"), early, second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Held != 2 {
		t.Fatalf("accepted %d, held %d; want 1 and 2", res.Accepted, res.Held)
	}
	if got := f.snapshot(t).Summary.Rejected[domain.RejectUnknownVoter]; got != 0 {
		t.Fatalf("a vote waiting for registration was rejected (%d)", got)
	}

	// The registration lands: the held votes are decided in log order, the
	// first counts and the second is v6's duplicate, without a redelivery.
	f.register(t, "v6", "B")
	if got := f.votesFor(t, "c1"); got != 1 {
		t.Errorf("c1 votes = %d, want 1", got)
	}
	if got := f.snapshot(t).Summary.Rejected[domain.RejectDuplicateVoter]; got != 1 {
		t.Errorf("duplicate_voter = %d, want 1", got)
	}

	// Redelivered afterwards, neither changes anything.
	before := f.snapshot(t)
	if _, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{early, second}); err != nil {
		t.Fatal(err)
	}
	if after := f.snapshot(t); !reflect.DeepEqual(before, after) {
		t.Errorf("a redelivery changed decided votes:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestHeldVotesAreDecidedWhenRegistrationCloses(t *testing.T) {
	t.Parallel()
	f := setupOpen(t)
	ctx := context.Background()
	// ghost never registers; v1's vote for an unregistered candidate holds
	// v1's later vote for c1 behind it.
	batch := []projections.Envelope[domain.VoteCast]{
		f.vote(t, 1, "ghost", "c1"), f.vote(t, 2, "v1", "c9"), f.vote(t, 3, "v1", "c1"),
	}
	res, err := f.store.ApplyVotes(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Held != 3 {
		t.Fatalf("held %d, want 3", res.Held)
	}
	f.closeRegistration(t, domain.TopicContests, 0)
	f.closeRegistration(t, domain.TopicCandidates, 2)
	if got := f.snapshot(t).Summary.VotesCast; got != 0 {
		t.Fatalf("votes cast with only candidates closed = %d, want 0", got)
	}
	f.closeRegistration(t, domain.TopicVoters, f.registrationEnd())

	s := f.snapshot(t)
	if got := f.votesFor(t, "c1"); got != 1 {
		t.Errorf("c1 votes = %d, want 1 (v1's first eligible vote)", got)
	}
	for reason, want := range map[domain.RejectionReason]int64{domain.RejectUnknownVoter: 1, domain.RejectUnknownCandidate: 1} {
		if got := s.Summary.Rejected[reason]; got != want {
			t.Errorf("%s = %d, want %d", reason, got, want)
		}
	}

	// A registration after its partition's marker is refused.
	f.register(t, "ghost", "A")
	if _, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{f.vote(t, 4, "ghost", "c2")}); err != nil {
		t.Fatal(err)
	}
	if got := f.votesFor(t, "c2"); got != 0 {
		t.Errorf("a late registration let ghost vote: c2 votes = %d", got)
	}
}

func TestConcurrentBatchesCountExactly(t *testing.T) {
	t.Parallel()
	f := setupOpen(t)
	ctx := context.Background()
	for i := 7; i <= 400; i++ {
		f.register(t, fmt.Sprintf("v%d", i), []string{"A", "B", "C"}[i%3])
	}
	f.closeRegistration(t, domain.TopicContests, 0)
	f.closeRegistration(t, domain.TopicCandidates, 2)
	f.closeRegistration(t, domain.TopicVoters, f.registrationEnd())
	// Eight writers apply overlapping batches (every vote appears in two
	// of them) at once: row locks in key order and deadlock retries must
	// still count each vote exactly once.
	var votes []projections.Envelope[domain.VoteCast]
	for i := 7; i <= 400; i++ {
		votes = append(votes, f.vote(t, i, fmt.Sprintf("v%d", i), []string{"c1", "c2"}[i%2]))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(votes); i += 8 {
				end := min(i+40, len(votes))
				if _, err := f.store.ApplyVotes(ctx, votes[i:end]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, want := f.snapshot(t).Summary.VotesCast, int64(len(votes)); got != want {
		t.Errorf("votes cast = %d, want %d", got, want)
	}
}

// timed is a vote cast at castAt whose message was logged at loggedAt.
func (f *fixture) timed(t *testing.T, n int, voterID, candidateID string, castAt, loggedAt time.Time) projections.Envelope[domain.VoteCast] {
	t.Helper()
	ev := f.seed.Vote(t, n, voterID, candidateID, "", castAt)
	ev.Position.Time = loggedAt
	return ev
}

// A vote dated in the future beyond the clock skew, or before any
// plausible election, is refused; one uploaded a year late is not (issue
// 24 §1: offline scanners upload after the polls close).
func TestAVoteDatedImplausiblyIsRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	logged := castAt.Add(time.Minute)
	res, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{
		f.timed(t, 1, "v1", "c1", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), logged),
		f.timed(t, 2, "v2", "c1", domain.EarliestPlausible().AddDate(0, 0, -1), logged),
		f.timed(t, 3, "v3", "c2", castAt.AddDate(-1, 0, 0), logged),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Rejected[domain.RejectImplausibleTime]; got != 2 {
		t.Errorf("implausible_time in the batch = %d, want 2", got)
	}
	s := f.snapshot(t)
	if s.Summary.VotesCast != 1 || s.Summary.Rejected[domain.RejectImplausibleTime] != 2 {
		t.Errorf("votes cast %d, implausible_time %d; want 1 and 2", s.Summary.VotesCast, s.Summary.Rejected[domain.RejectImplausibleTime])
	}
	d, err := f.results.Dashboard(ctx, read.DashboardOptions{TimelineMinutes: 60})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Timeline) != 1 || !d.Timeline[0].Minute.Equal(castAt.AddDate(-1, 0, 0).Truncate(time.Minute)) {
		t.Errorf("timeline = %+v, want the one plausible vote's minute (uploaded a year late)", d.Timeline)
	}
	// The refused voters may still vote, at a plausible time.
	if _, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{f.timed(t, 4, "v1", "c1", castAt, logged)}); err != nil {
		t.Fatal(err)
	}
	if got := f.votesFor(t, "c1"); got != 1 {
		t.Errorf("c1 votes = %d, want 1", got)
	}
}

func TestScheduleBoundsThePolls(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	schedule, err := domain.NewElectionScheduled(castAt, castAt.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Before the schedule is in the log, nothing bounds the polls.
	early := f.timed(t, 1, "v1", "c1", castAt.Add(-time.Minute), castAt)
	if err := f.store.RecordSchedule(ctx, f.seed.Take(domain.TopicVotes), schedule); err != nil {
		t.Fatal(err)
	}
	batch := []projections.Envelope[domain.VoteCast]{
		early,
		f.timed(t, 2, "v2", "c1", castAt.Add(-time.Minute), castAt),                    // before opening
		f.timed(t, 3, "v3", "c2", castAt, castAt),                                      // at opening
		f.timed(t, 4, "v4", "c2", castAt.Add(time.Hour), castAt.Add(time.Hour)),        // at closing: too late
		f.timed(t, 5, "v5", "c2", castAt.Add(59*time.Minute), castAt.Add(2*time.Hour)), // in time, logged late
	}
	if _, err := f.store.ApplyVotes(ctx, batch); err != nil {
		t.Fatal(err)
	}
	s := f.snapshot(t)
	if got := s.Summary.Rejected[domain.RejectOutsidePolls]; got != 2 {
		t.Errorf("outside_polls = %d, want 2", got)
	}
	if got, want := f.votesFor(t, "c1"), int64(1); got != want {
		t.Errorf("c1 votes = %d, want %d (the vote before the schedule)", got, want)
	}
	if got, want := f.votesFor(t, "c2"), int64(2); got != want {
		t.Errorf("c2 votes = %d, want %d", got, want)
	}
}

func TestACandidateCannotChangeAfterRegistrationCloses(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	party, _ := domain.NewParty("Another Party")
	c, err := domain.NewCandidate("c1", "Someone Else", party, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.store.ApplyCandidates(ctx, []projections.Envelope[domain.CandidateRegistered]{
		{Event: domain.CandidateRegistered{Candidate: c}, Position: projections.Position{Topic: domain.TopicCandidates, Offset: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Registered != 0 {
		t.Errorf("registered %d after the close marker, want 0", res.Registered)
	}
	for _, got := range f.snapshot(t).Candidates {
		if got.CandidateID == "c1" && (got.Name != "Candidate c1" || got.Party != "Civic Alliance") {
			t.Errorf("c1 changed after registration closed: %+v", got)
		}
	}
	var refused int
	if err := f.pool.QueryRow(ctx, "SELECT count(*) FROM refused_registrations WHERE topic = 'candidates'").Scan(&refused); err != nil {
		t.Fatal(err)
	}
	if refused != 1 {
		t.Errorf("refused candidate registrations = %d, want 1", refused)
	}
}

func TestBallotStatusFollowsTheVote(t *testing.T) {
	t.Parallel()
	f := setupOpen(t)
	ctx := context.Background()
	held := f.vote(t, 1, "v6", "c1") // v6 is not registered yet
	if _, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{held}); err != nil {
		t.Fatal(err)
	}
	status := func() read.BallotStatus {
		t.Helper()
		b, err := f.results.Ballot(ctx, held.Event.Vote.ID())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := status(); b.Status != "pending" {
		t.Errorf("held vote: %+v, want pending", b)
	}
	f.register(t, "v6", "B")
	if b := status(); b.Status != "counted" {
		t.Errorf("after v6 registered: %+v, want counted", b)
	}
	if _, err := f.results.Ballot(ctx, "00000000-0000-4000-8000-000000000999"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("a vote never seen: %v, want ErrNotFound", err)
	}
}

// A vote read without a broker timestamp has no log time. sqlc reads
// timestamptz as time.Time, whose zero value is a real instant (year 1) to
// PostgreSQL; it must be stored as unknown, never as that instant.
func TestAVoteWithoutALogTimeIsRecordedAsUnknown(t *testing.T) {
	t.Parallel()
	f := setupOpen(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Hour)
	first := f.timed(t, 1, "v1", "c1", castAt, time.Time{})
	second := f.timed(t, 2, "v1", "c2", castAt, time.Time{})          // rejected: v1 has voted
	unregistered := f.timed(t, 3, "ghost", "c1", castAt, time.Time{}) // held: registration is open
	if _, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{first, second, unregistered}); err != nil {
		t.Fatal(err)
	}
	var recorded time.Time
	if err := f.pool.QueryRow(ctx, "SELECT recorded_at FROM rejections").Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded.Before(before) {
		t.Errorf("rejection recorded at %s, want when it was recorded (now)", recorded)
	}
	var heldUnknown bool
	if err := f.pool.QueryRow(ctx, "SELECT logged_at IS NULL FROM held_votes").Scan(&heldUnknown); err != nil {
		t.Fatal(err)
	}
	if !heldUnknown {
		t.Error("the held vote's log time is stored as a time, want NULL (unknown)")
	}
}

// A held vote rests as the log holds it, its choice sealed when it came
// sealed (00040): held_votes has no candidate and its message no clear
// candidate_id. When its voter registers, the store opens it with the
// tally key and counts it for whom it was cast, as a replay would.
func TestAHeldSealedVoteRestsSealedAndCountsWhenReleased(t *testing.T) {
	t.Parallel()
	f := setupOpen(t)
	ctx := context.Background()
	key, err := domain.GenerateTallyKey()
	if err != nil {
		t.Fatal(err)
	}
	opener := domain.NewOpener(&key, false)
	f.store.OpenWith(opener)
	sealer, err := domain.NewSealer(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ev := f.vote(t, 1, "late", "c2")
	sealed, err := sealer.Seal(ev.Event.Vote)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := json.Marshal(domain.VoteCast{Vote: sealed})
	if err != nil {
		t.Fatal(err)
	}
	// The projector decodes the log's message through the opener.
	if ev.Event, err = opener.DecodeVoteCast(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{ev}); err != nil {
		t.Fatal(err)
	}
	choice, ok := sealed.Sealed()
	if !ok {
		t.Fatal("the sealer left the vote clear")
	}
	var held []byte
	if err := f.pool.QueryRow(ctx, "SELECT message FROM held_votes").Scan(&held); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(held, []byte(`"candidate_id"`)) || !bytes.Contains(held, []byte(`"sealed_choice":"`+choice.String()+`"`)) {
		t.Errorf("held vote rests as %s, want its sealed message and no candidate_id", held)
	}
	f.register(t, "late", "A")
	if got := f.votesFor(t, "c2"); got != 1 {
		t.Errorf("c2 has %d votes after the held vote's voter registered, want 1", got)
	}
	var left int
	if err := f.pool.QueryRow(ctx, "SELECT count(*) FROM held_votes").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d votes still held", left)
	}
}
