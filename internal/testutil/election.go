package testutil

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/write"
)

// Seeder registers a small election straight into a projection through
// write.Store, without Kafka: each event goes at the next offset of
// its topic's only partition. The handlers and projections tests seed their
// elections with it; the data (names, regions, dates) is each test's own.
// One factory instead of seeding copied between packages, as river's
// rivershared/testfactory (../shared/STYLE.md).
type Seeder struct {
	Store   *write.Store
	Results *read.Results

	mu   sync.Mutex
	next map[string]int64 // next offset per topic
}

// NewSeeder returns a Seeder over pool, which must be migrated (Pool's
// are).
func NewSeeder(tb testing.TB, pool *pgxpool.Pool) *Seeder {
	tb.Helper()
	store, err := write.NewStore(pool)
	if err != nil {
		tb.Fatal(err)
	}
	results, err := read.NewResults(pool)
	if err != nil {
		tb.Fatal(err)
	}
	return &Seeder{Store: store, Results: results, next: map[string]int64{}}
}

// Next returns the next offset of topic, without taking it.
func (s *Seeder) Next(topic string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next[topic]
}

// Take returns the next position of topic and moves past it.
func (s *Seeder) Take(topic string) projections.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := projections.Position{Topic: topic, Offset: s.next[topic]}
	s.next[topic]++
	return p
}

// Contests registers contests.
func (s *Seeder) Contests(tb testing.TB, contests ...domain.Contest) {
	tb.Helper()
	var evs []projections.Envelope[domain.ContestRegistered]
	for _, c := range contests {
		evs = append(evs, projections.Envelope[domain.ContestRegistered]{Event: domain.ContestRegistered{Contest: c}, Position: s.Take(domain.TopicContests)})
	}
	if _, err := s.Store.ApplyContests(context.Background(), evs); err != nil {
		tb.Fatal(err)
	}
}

// Candidate is a candidate of party ("": of none), named name, standing
// in contest ("" is the default contest).
func Candidate(tb testing.TB, id, name, party, contest string) domain.Candidate {
	tb.Helper()
	var p domain.Party
	if party != "" {
		var err error
		if p, err = domain.NewParty(party); err != nil {
			tb.Fatal(err)
		}
	}
	c, err := domain.NewCandidate(id, name, p, "", "", "")
	if err != nil {
		tb.Fatal(err)
	}
	if contest != "" {
		if c, err = c.InContest(contest); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// Candidates registers candidates.
func (s *Seeder) Candidates(tb testing.TB, candidates ...domain.Candidate) {
	tb.Helper()
	var evs []projections.Envelope[domain.CandidateRegistered]
	for _, c := range candidates {
		evs = append(evs, projections.Envelope[domain.CandidateRegistered]{Event: domain.CandidateRegistered{Candidate: c}, Position: s.Take(domain.TopicCandidates)})
	}
	if _, err := s.Store.ApplyCandidates(context.Background(), evs); err != nil {
		tb.Fatal(err)
	}
}

// Voter is a female voter of region living in city.
func Voter(tb testing.TB, id, name, region, city string, born, registered time.Time) domain.Voter {
	tb.Helper()
	r, err := domain.NewRegion(region)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := domain.NewVoter(id, name, "female", born, r, city, registered)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// Voters registers voters.
func (s *Seeder) Voters(tb testing.TB, voters ...domain.Voter) {
	tb.Helper()
	var evs []projections.Envelope[domain.VoterRegistered]
	for _, v := range voters {
		evs = append(evs, projections.Envelope[domain.VoterRegistered]{Event: domain.VoterRegistered{Voter: v}, Position: s.Take(domain.TopicVoters)})
	}
	if _, err := s.Store.ApplyVoters(context.Background(), evs); err != nil {
		tb.Fatal(err)
	}
}

// CloseRegistration applies a close marker, dated at, at topic's next
// offset.
func (s *Seeder) CloseRegistration(tb testing.TB, topic string, at time.Time) {
	tb.Helper()
	s.CloseRegistrationAt(tb, topic, s.Next(topic), at)
}

// CloseRegistrationAt applies a close marker, dated at, at offset of
// topic, and moves topic's next offset past it.
func (s *Seeder) CloseRegistrationAt(tb testing.TB, topic string, offset int64, at time.Time) {
	tb.Helper()
	marker, err := domain.NewRegistrationClosed(1, at)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Store.CloseRegistration(context.Background(), projections.Position{Topic: topic, Offset: offset}, marker, 1); err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	s.next[topic] = max(s.next[topic], offset+1)
	s.mu.Unlock()
}

// VoteID is the n-th test vote's vote_id.
func VoteID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// Vote is the envelope of voter's vote for candidate (in contest, unless
// ""), cast at castAt, with vote_id VoteID(n), at the votes topic's next
// offset; apply it with ApplyVotes.
func (s *Seeder) Vote(tb testing.TB, n int, voter, candidate, contest string, castAt time.Time) projections.Envelope[domain.VoteCast] {
	tb.Helper()
	v, err := domain.NewVote(VoteID(n), voter, candidate, castAt)
	if err != nil {
		tb.Fatal(err)
	}
	if contest != "" {
		if v, err = v.InContest(contest); err != nil {
			tb.Fatal(err)
		}
	}
	return projections.Envelope[domain.VoteCast]{Event: domain.VoteCast{Vote: v}, Position: s.Take(domain.TopicVotes)}
}

// OpenStations opens stations at the votes topic's next offset (the rule's
// stations register): the votes after it may come through them.
func (s *Seeder) OpenStations(tb testing.TB, stations ...domain.Station) {
	tb.Helper()
	opening, err := domain.NewStationOpened(time.Now(), stations...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Store.RecordStationOpen(context.Background(), s.Take(domain.TopicVotes), opening); err != nil {
		tb.Fatal(err)
	}
}

// ApplyVotes applies votes in one batch.
func (s *Seeder) ApplyVotes(tb testing.TB, votes ...projections.Envelope[domain.VoteCast]) {
	tb.Helper()
	if _, err := s.Store.ApplyVotes(context.Background(), votes); err != nil {
		tb.Fatal(err)
	}
}
