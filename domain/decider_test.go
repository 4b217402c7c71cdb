package domain_test

import (
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
)

var at = time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func region(name string) domain.Region { return must(domain.NewRegion(name)) }

func voter(id, home string) domain.Voter {
	return must(domain.NewVoter(id, "Voter", "female", at.AddDate(-30, 0, 0), region(home), "Town", at.AddDate(0, -1, 0)))
}

func candidate(id, contest string) domain.Candidate {
	c := must(domain.NewCandidate(id, "Candidate", must(domain.NewParty("Party")), "", "", ""))
	return must(c.InContest(contest))
}

// vote is vote n of voterID for candidateID in contest, cast at the
// election's start plus n minutes and logged then.
func vote(n int, voterID, candidateID, contest string) domain.VoteEntry {
	v := must(domain.NewVote(fmt.Sprintf("00000000-0000-4000-8000-%012d", n), voterID, candidateID, at.Add(time.Duration(n)*time.Minute)))
	v = must(v.InContest(contest))
	return domain.VoteEntry{Vote: v, Offset: int64(n), Logged: v.CastAt()}
}

// ledger is a register with a North voter v1, a South voter v2, candidate
// c1 in the default contest, c2 in "senate", open to North only, and the
// station st-n of North, which reported and is open.
func ledger(closed bool) *domain.Ledger {
	l := domain.NewLedger()
	l.AddStationOpen(0, -1, must(domain.NewStationOpened(at, must(domain.NewStation("st-n", region("North"))))))
	l.Closed = closed
	l.Voters["v1"] = voter("v1", "North")
	l.Voters["v2"] = voter("v2", "South")
	l.Candidates["c1"] = candidate("c1", domain.DefaultContest)
	l.Candidates["c2"] = candidate("c2", "senate")
	l.Contests["senate"] = must(domain.NewContest("senate", "Senate", domain.KindCandidate, []domain.Region{region("North")}))
	return l
}

func TestDecideGivesEveryReason(t *testing.T) {
	north := must(domain.NewStation("st-n", region("North")))
	schedule := must(domain.NewElectionScheduled(at, at.Add(time.Hour)))
	tests := []struct {
		name   string
		entry  domain.VoteEntry
		facts  func(*domain.Ledger)
		want   domain.VerdictKind
		reason domain.RejectionReason
	}{
		{"a registered voter's first vote counts", vote(1, "v1", "c1", domain.DefaultContest), nil, domain.VerdictCounted, domain.RejectionReason{}},
		{"an unknown voter", vote(1, "ghost", "c1", domain.DefaultContest), nil, domain.VerdictRejected, domain.RejectUnknownVoter},
		{"a station of another region", func() domain.VoteEntry {
			e := vote(1, "v2", "c1", domain.DefaultContest)
			e.Vote = e.Vote.WithStation(north)
			return e
		}(), nil, domain.VerdictRejected, domain.RejectWrongStation},
		{"a station of the voter's region", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Vote = e.Vote.WithStation(north)
			return e
		}(), nil, domain.VerdictCounted, domain.RejectionReason{}},
		{"a station that never reported", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Vote = e.Vote.WithStation(must(domain.NewStation("ghost-station", region("North"))))
			return e
		}(), nil, domain.VerdictRejected, domain.RejectUnknownStation},
		{"a station stamped with another region than it reported", func() domain.VoteEntry {
			e := vote(1, "v2", "c1", domain.DefaultContest)
			e.Vote = e.Vote.WithStation(must(domain.NewStation("st-n", region("South"))))
			return e
		}(), nil, domain.VerdictRejected, domain.RejectUnknownStation},
		{"a late upload before its station's close marker counts", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Vote = e.Vote.WithStation(north)
			e.Logged = e.Vote.CastAt().AddDate(0, 0, 12)
			return e
		}(), func(l *domain.Ledger) {
			l.AddStationClose(0, 2, must(domain.NewStationClosed(at.AddDate(0, 0, 12).Add(time.Hour), "st-n")))
		}, domain.VerdictCounted, domain.RejectionReason{}},
		{"a backdated vote after its station's close marker", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Vote = e.Vote.WithStation(north)
			return e
		}(), func(l *domain.Ledger) {
			l.AddStationClose(0, 0, must(domain.NewStationClosed(at.Add(-time.Hour), "st-n")))
		}, domain.VerdictRejected, domain.RejectAfterStationClose},
		{"another station's close marker", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Vote = e.Vote.WithStation(north)
			return e
		}(), func(l *domain.Ledger) {
			l.AddStationClose(0, 0, must(domain.NewStationClosed(at, "st-other")))
		}, domain.VerdictCounted, domain.RejectionReason{}},
		{"the station's close marker on another partition", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Vote = e.Vote.WithStation(north)
			return e
		}(), func(l *domain.Ledger) {
			l.AddStationClose(1, 0, must(domain.NewStationClosed(at, "st-n")))
		}, domain.VerdictCounted, domain.RejectionReason{}},
		{"a vote cast before any election", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Vote = must(domain.NewVote(e.Vote.ID(), "v1", "c1", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)))
			return e
		}(), nil, domain.VerdictRejected, domain.RejectImplausibleTime},
		{"an unknown contest", vote(1, "v1", "c1", "nowhere"), nil, domain.VerdictRejected, domain.RejectUnknownContest},
		{"a contest not open to the voter's region", vote(1, "v2", "c2", "senate"), nil, domain.VerdictRejected, domain.RejectNotEligible},
		{"an unknown candidate", vote(1, "v1", "c-none", domain.DefaultContest), nil, domain.VerdictRejected, domain.RejectUnknownCandidate},
		{"a candidate of another contest", vote(1, "v1", "c2", domain.DefaultContest), nil, domain.VerdictRejected, domain.RejectUnknownCandidate},
		{"a second vote", vote(1, "v1", "c1", domain.DefaultContest), func(l *domain.Ledger) {
			l.Record([]domain.VoteEntry{vote(0, "v1", "c1", domain.DefaultContest)}, []domain.Verdict{{Kind: domain.VerdictCounted}})
		}, domain.VerdictRejected, domain.RejectDuplicateVoter},
		{"a vote decided before is skipped", vote(1, "v1", "c1", domain.DefaultContest), func(l *domain.Ledger) {
			l.Record([]domain.VoteEntry{vote(1, "v1", "c1", domain.DefaultContest)}, []domain.Verdict{{Kind: domain.VerdictRejected}})
		}, domain.VerdictSkipped, domain.RejectionReason{}},
		{"a cast_at far ahead of its log time", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Logged = e.Vote.CastAt().Add(-domain.MaxCastAhead - time.Second)
			return e
		}(), nil, domain.VerdictRejected, domain.RejectImplausibleTime},
		{"a cast_at outside the polls", vote(90, "v1", "c1", domain.DefaultContest), func(l *domain.Ledger) {
			l.AddSchedule(0, 0, schedule)
		}, domain.VerdictRejected, domain.RejectOutsidePolls},
		{"a schedule after the vote does not apply", vote(90, "v1", "c1", domain.DefaultContest), func(l *domain.Ledger) {
			l.AddSchedule(0, 91, schedule)
		}, domain.VerdictCounted, domain.RejectionReason{}},
		{"a vote on another partition than its voter's", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Partition = (domain.VotePartition("v1", 4) + 1) % 4
			return e
		}(), func(l *domain.Ledger) { l.Partitions = 4 }, domain.VerdictMisrouted, domain.RejectionReason{}},
		{"a vote on its voter's partition", func() domain.VoteEntry {
			e := vote(1, "v1", "c1", domain.DefaultContest)
			e.Partition = domain.VotePartition("v1", 4)
			return e
		}(), func(l *domain.Ledger) { l.Partitions = 4 }, domain.VerdictCounted, domain.RejectionReason{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ledger(true)
			if tt.facts != nil {
				tt.facts(l)
			}
			got := domain.Decide([]domain.VoteEntry{tt.entry}, l)[0]
			if got.Kind != tt.want || got.Reason != tt.reason {
				t.Fatalf("verdict = %v %q, want %v %q", got.Kind, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestDecideHoldsUntilRegistrationAndReleases(t *testing.T) {
	l := ledger(false)
	batch := []domain.VoteEntry{
		vote(1, "v3", "c1", domain.DefaultContest), // v3 not registered yet: held
		vote(2, "v3", "c1", domain.DefaultContest), // held behind it, though it could be decided
		vote(3, "v1", "c9", domain.DefaultContest), // candidate not registered yet: held
		vote(4, "v1", "c1", "nowhere"),             // contest not registered yet: held
		vote(5, "v2", "c1", domain.DefaultContest), // counted
	}
	verdicts := domain.Decide(batch, l)
	kinds := func(vs []domain.Verdict) []domain.VerdictKind {
		var out []domain.VerdictKind
		for _, v := range vs {
			out = append(out, v.Kind)
		}
		return out
	}
	if got, want := kinds(verdicts), []domain.VerdictKind{domain.VerdictHeld, domain.VerdictHeld, domain.VerdictHeld, domain.VerdictHeld, domain.VerdictCounted}; !slices.Equal(got, want) {
		t.Fatalf("verdicts = %v, want %v", got, want)
	}
	l.Record(batch, verdicts)
	// A later vote of a voter with a held vote in the contest is held too.
	l.Voters["v3"] = voter("v3", "North")
	if got := domain.Decide([]domain.VoteEntry{vote(6, "v3", "c1", domain.DefaultContest)}, l)[0].Kind; got != domain.VerdictHeld {
		t.Fatalf("a vote behind a held one = %v, want held", got)
	}
	// Released once v3 registers: the first counts, the second is a
	// duplicate; the others still wait.
	held := batch[:4]
	for i := range held {
		held[i].Released = true
	}
	l.Release(held)
	if got, want := kinds(domain.Decide(held, l)), []domain.VerdictKind{domain.VerdictCounted, domain.VerdictRejected, domain.VerdictHeld, domain.VerdictHeld}; !slices.Equal(got, want) {
		t.Fatalf("released = %v, want %v", got, want)
	}
	// When registration closes, what still waits is decided.
	l.Closed = true
	if got := domain.Decide(held[2:], l); got[0].Reason != domain.RejectUnknownCandidate || got[1].Reason != domain.RejectUnknownContest {
		t.Fatalf("after closing = %v, want unknown_candidate, unknown_contest", got)
	}
}

// A station's opening binds by position, as its close does: a vote
// before the station's opening in its partition is unknown_station, never
// held, even while registration is open; one after it counts.
func TestDecideOpensAStationByPosition(t *testing.T) {
	for _, closed := range []bool{false, true} {
		l := ledger(closed)
		late := must(domain.NewStation("st-late", region("North")))
		l.AddStationOpen(0, 5, must(domain.NewStationOpened(at, late)))
		before, after := vote(4, "v1", "c1", domain.DefaultContest), vote(6, "v1", "c1", domain.DefaultContest)
		before.Vote, after.Vote = before.Vote.WithStation(late), after.Vote.WithStation(late)
		got := domain.Decide([]domain.VoteEntry{before, after}, l)
		if got[0].Reason != domain.RejectUnknownStation || got[1].Kind != domain.VerdictCounted {
			t.Errorf("registration closed %v: %v, want unknown_station before the opening and counted after", closed, got)
		}
	}
}

func TestCheckCastTime(t *testing.T) {
	schedule := must(domain.NewElectionScheduled(at, at.Add(time.Hour)))
	tests := []struct {
		name             string
		castAt, loggedAt time.Time
		schedule         *domain.ElectionScheduled
		want             domain.RejectionReason
	}{
		{"logged when cast", at, at, nil, domain.RejectionReason{}},
		{"unknown log time is not checked", at.AddDate(10, 0, 0), time.Time{}, nil, domain.RejectionReason{}},
		{"just within the clock skew ahead", at.Add(domain.MaxCastAhead), at, nil, domain.RejectionReason{}},
		{"beyond the clock skew ahead", at.Add(domain.MaxCastAhead + time.Microsecond), at, nil, domain.RejectImplausibleTime},
		{"uploaded a year late", at.AddDate(-1, 0, 0), at, nil, domain.RejectionReason{}},
		{"at the earliest plausible date", domain.EarliestPlausible(), at, nil, domain.RejectionReason{}},
		{"before the earliest plausible date", domain.EarliestPlausible().Add(-time.Microsecond), at, nil, domain.RejectImplausibleTime},
		{"before the earliest plausible date, log time unknown", domain.EarliestPlausible().Add(-time.Hour), time.Time{}, nil, domain.RejectImplausibleTime},
		{"late upload inside the window", at.Add(30 * time.Minute), at.AddDate(0, 0, 12), &schedule, domain.RejectionReason{}},
		{"late upload before the window", at.Add(-time.Hour), at.AddDate(0, 0, 12), &schedule, domain.RejectOutsidePolls},
		{"late upload after the window", at.Add(2 * time.Hour), at.AddDate(0, 0, 12), &schedule, domain.RejectOutsidePolls},
		{"at the polls' opening", at, at, &schedule, domain.RejectionReason{}},
		{"before the polls open", at.Add(-time.Microsecond), at, &schedule, domain.RejectOutsidePolls},
		{"at the polls' closing", at.Add(time.Hour), at.Add(time.Hour), &schedule, domain.RejectOutsidePolls},
		{"late upload inside the window", at.Add(30 * time.Minute), at.AddDate(0, 0, 12), &schedule, domain.RejectionReason{}},
		{"late upload before the window", at.Add(-time.Hour), at.AddDate(0, 0, 12), &schedule, domain.RejectOutsidePolls},
		{"late upload after the window", at.Add(2 * time.Hour), at.AddDate(0, 0, 12), &schedule, domain.RejectOutsidePolls},
		{"nanoseconds are cut to microseconds", at.Add(time.Hour - time.Nanosecond), at.Add(time.Hour), &schedule, domain.RejectionReason{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, rejected := domain.CheckCastTime(tt.castAt, tt.loggedAt, tt.schedule)
			if reason != tt.want || rejected != (tt.want != domain.RejectionReason{}) {
				t.Fatalf("CheckCastTime = %q %v, want %q", reason, rejected, tt.want)
			}
		})
	}
}

// Kafka's murmur2 partitioner, checked against sarama's
// NewMurmur2Partitioner over 100 partitions (domain may not import it).
func TestVotePartitionIsKafkasMurmur2(t *testing.T) {
	for key, want := range map[string]int32{"21": 40, "foobar": 66, "a-little-bit-long-string": 12, "a-little-bit-longer-string": 19,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": 77, "abc": 7, "v1": 3, "voter-000123": 73} {
		if got := domain.VotePartition(key, 100); got != want {
			t.Errorf("VotePartition(%q, 100) = %d, want %d", key, got, want)
		}
	}
}

// partitioners are the ones producers use: murmur2 (the contract), sarama's
// default FNV-1a, and CRC32 (librdkafka's consistent).
var partitioners = map[string]func(key string, n int) int{
	"murmur2": func(key string, n int) int { return int(domain.VotePartition(key, n)) },
	"fnv1a": func(key string, n int) int {
		h := fnv.New32a()
		h.Write([]byte(key))
		p := int32(h.Sum32()) % int32(n)
		if p < 0 {
			p = -p
		}
		return int(p)
	},
	"crc32": func(key string, n int) int { return int(crc32.ChecksumIEEE([]byte(key)) % uint32(n)) },
}

// Count is the specification; Decide, fed the votes in any interleaving of
// the partitions and any batching, with redeliveries, over a Ledger of the
// same register, decides every vote as Count does. Producers with other
// partitioners misroute some votes.
func TestDecideAgreesWithCount(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 0xdec1de))
		parts := 1 + rng.IntN(4)
		closed := rng.IntN(3) > 0
		l := ledger(closed)
		l.Partitions = parts
		// st-n and st-s open at some point of each partition (their
		// openings), and st-s closes at some point of some (its close
		// markers); st-x never opens.
		log := domain.ElectionLog{Votes: make([][]domain.LogEntry, parts)}
		voters := []string{"v1", "v2", "v3", "ghost"}
		names := []string{"murmur2", "murmur2", "fnv1a", "crc32"}
		var sent []domain.VoteEntry
		for p := range parts {
			opening := must(domain.NewStationOpened(at, must(domain.NewStation("st-n", region("North")))))
			log.Votes[p] = append(log.Votes[p], domain.LogEntry{Offset: 0, Event: opening})
		}
		for n := range 30 {
			if rng.IntN(8) == 0 { // st-s opens on one partition, South first, now and then North
				p := rng.IntN(parts)
				home := []string{"South", "South", "North"}[rng.IntN(3)]
				opening := must(domain.NewStationOpened(at, must(domain.NewStation("st-s", region(home)))))
				log.Votes[p] = append(log.Votes[p], domain.LogEntry{Offset: int64(len(log.Votes[p])), Event: opening})
				continue
			}
			if rng.IntN(15) == 0 { // st-s's close marker on one partition
				p := rng.IntN(parts)
				log.Votes[p] = append(log.Votes[p], domain.LogEntry{Offset: int64(len(log.Votes[p])), Event: must(domain.NewStationClosed(at, "st-s"))})
				continue
			}
			var e domain.VoteEntry
			if len(sent) > 0 && rng.IntN(6) == 0 {
				e = sent[rng.IntN(len(sent))] // published again
			} else {
				contest := []string{domain.DefaultContest, "senate", "nowhere"}[rng.IntN(3)]
				e = vote(n, voters[rng.IntN(len(voters))], []string{"c1", "c2", "c9"}[rng.IntN(3)], contest)
				if rng.IntN(4) == 0 { // uploaded late, days after it was cast
					e.Logged = e.Logged.AddDate(0, 0, 1+rng.IntN(20))
				}
				if i := rng.IntN(5); i < 3 { // through a station: registered, closed, never reported
					id := []string{"st-n", "st-s", "st-x"}[i]
					home := map[string]string{"st-n": "North", "st-s": "South", "st-x": "North"}[id]
					if rng.IntN(8) == 0 { // stamped with another region than it reported
						home = "South"
					}
					e.Vote = e.Vote.WithStation(must(domain.NewStation(id, region(home))))
				}
			}
			p := partitioners[names[rng.IntN(len(names))]](e.Vote.VoterID(), parts)
			e.Partition, e.Offset = int32(p), int64(len(log.Votes[p]))
			log.Votes[p] = append(log.Votes[p], domain.LogEntry{Offset: e.Offset, Time: e.Logged, Event: domain.VoteCast{Vote: e.Vote}})
			sent = append(sent, e)
		}
		want := countOver(l, log)

		// Deliver: random batches from random partitions, each in order.
		next := make([]int, parts)
		got := map[string]string{}
		var misrouted [][2]int64
		for {
			var batch []domain.VoteEntry
			for range 1 + rng.IntN(5) {
				p := rng.IntN(parts)
				if next[p] < len(log.Votes[p]) {
					le := log.Votes[p][next[p]]
					if c, ok := le.Event.(domain.StationClosed); ok {
						l.AddStationClose(int32(p), le.Offset, c)
						next[p]++
						continue
					}
					if o, ok := le.Event.(domain.StationOpened); ok {
						l.AddStationOpen(int32(p), le.Offset, o)
						next[p]++
						continue
					}
					batch = append(batch, domain.VoteEntry{Vote: le.Event.(domain.VoteCast).Vote, Partition: int32(p), Offset: le.Offset, Logged: le.Time})
					next[p]++
				}
			}
			if len(batch) == 0 {
				done := true
				for p := range parts {
					done = done && next[p] == len(log.Votes[p])
				}
				if done {
					break
				}
				continue
			}
			verdicts := domain.Decide(batch, l)
			l.Record(batch, verdicts)
			for i, v := range verdicts {
				id := batch[i].Vote.ID()
				switch v.Kind {
				case domain.VerdictCounted:
					got[id] = "counted"
				case domain.VerdictRejected:
					got[id] = v.Reason.String()
				case domain.VerdictHeld:
					got[id] = "held"
				case domain.VerdictMisrouted:
					misrouted = append(misrouted, [2]int64{int64(batch[i].Partition), batch[i].Offset})
				}
			}
		}
		slices.SortFunc(misrouted, func(a, b [2]int64) int { return int(a[0]-b[0])*1000 + int(a[1]-b[1]) })
		if !maps2Equal(got, want.verdicts) || !slices.Equal(misrouted, want.misrouted) {
			t.Fatalf("seed %d: Decide = %v misrouted %v, Count = %v misrouted %v", seed, got, misrouted, want.verdicts, want.misrouted)
		}
	}
}

type counted struct {
	verdicts  map[string]string
	misrouted [][2]int64
}

// countOver runs Count on log with l's register.
func countOver(l *domain.Ledger, log domain.ElectionLog) counted {
	reg := func(events ...any) [][]domain.LogEntry {
		var p []domain.LogEntry
		for i, e := range events {
			p = append(p, domain.LogEntry{Offset: int64(i), Event: e})
		}
		if l.Closed {
			p = append(p, domain.LogEntry{Offset: int64(len(p)), Event: must(domain.NewRegistrationClosed(1, at))})
		}
		return [][]domain.LogEntry{p}
	}
	var voters, candidates, contests []any
	for _, v := range l.Voters {
		voters = append(voters, domain.VoterRegistered{Voter: v})
	}
	for _, c := range l.Candidates {
		candidates = append(candidates, domain.CandidateRegistered{Candidate: c})
	}
	for _, c := range l.Contests {
		contests = append(contests, domain.ContestRegistered{Contest: c})
	}
	log.Voters, log.Candidates, log.Contests = reg(voters...), reg(candidates...), reg(contests...)
	o := domain.Count(log)
	out := counted{verdicts: map[string]string{}, misrouted: o.Misrouted}
	for _, v := range o.Counted {
		out.verdicts[v.ID()] = "counted"
	}
	for id, r := range o.Rejected {
		out.verdicts[id] = r.String()
	}
	for _, id := range o.Held {
		out.verdicts[id] = "held"
	}
	return out
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
