package projections_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/rebuild"
	"github.com/votewatch/votewatch/projections/write"
)

// The decision rule depends only on the log: whatever order the projector
// reads the topics in, however often it is restarted and messages are
// redelivered, the live projection ends where domain.Count says, and a
// replay of the same log rebuilds it exactly.
func TestEveryInterleavingDecidesAsTheLogSays(t *testing.T) {
	t.Parallel()
	runs := 40
	if testing.Short() {
		runs = 10
	}
	for seed := range uint64(runs) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			log := randomLog(rng)
			want := domain.Count(log.spec())

			pool := testutil.Pool(t)
			store, err := write.NewStore(pool)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, rng, store, log)
			got := readOutcome(t, pool)
			if diff := compareOutcome(want, got); diff != "" {
				t.Fatalf("live projection differs from domain.Count (log:\n%s)\n%s", log, diff)
			}
			checkSelf(t, pool)

			rep := replayVerify(t, pool, log)
			if len(rep.Differences) > 0 {
				t.Fatalf("replay differs from live (log:\n%s)\n%s", log, projections.FormatDiffs(rep.Differences))
			}
		})
	}
}

// testLog is a generated election log: per topic, per partition, records
// in offset order.
type testLog struct {
	topics map[string][][]projections.LogRecord
	events map[string][][]any
}

func (l *testLog) add(topic string, partition int, value []byte, event any) {
	l.addAt(topic, partition, value, event, time.Time{})
}

// addAt appends a message logged at (its Kafka timestamp).
func (l *testLog) addAt(topic string, partition int, value []byte, event any, at time.Time) {
	recs := l.topics[topic][partition]
	l.topics[topic][partition] = append(recs, projections.LogRecord{Partition: int32(partition), Offset: int64(len(recs)), Value: value, Time: at})
	l.events[topic][partition] = append(l.events[topic][partition], event)
}

func (l *testLog) spec() domain.ElectionLog {
	conv := func(topic string) [][]domain.LogEntry {
		out := make([][]domain.LogEntry, len(l.events[topic]))
		for p, evs := range l.events[topic] {
			for o, ev := range evs {
				out[p] = append(out[p], domain.LogEntry{Offset: int64(o), Time: l.topics[topic][p][o].Time, Event: ev})
			}
		}
		return out
	}
	return domain.ElectionLog{Contests: conv(domain.TopicContests), Candidates: conv(domain.TopicCandidates), Voters: conv(domain.TopicVoters),
		Votes: conv(domain.TopicVotes), Stations: conv(domain.TopicStations)}
}

func (l *testLog) String() string {
	var b strings.Builder
	for _, topic := range domain.EventTopics {
		for p, recs := range l.topics[topic] {
			for _, r := range recs {
				fmt.Fprintf(&b, "  %s/%d@%d %s\n", topic, p, r.Offset, r.Value)
			}
		}
	}
	return b.String()
}

// ruleAt is the generated elections' start: two days ago, so a vote's
// cast_at and log time stay plausible against each other and today.
var ruleAt = time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)

// randomLog makes a small election with every kind of trouble: late and
// repeated registrations, unknown voters and candidates, second votes,
// redeliveries, and registration closed fully, partly or not at all.
func randomLog(rng *rand.Rand) *testLog {
	regParts, voteParts := 1+rng.IntN(3), 1+rng.IntN(3)
	l := &testLog{topics: map[string][][]projections.LogRecord{}, events: map[string][][]any{}}
	for topic, n := range map[string]int{domain.TopicContests: regParts, domain.TopicCandidates: regParts, domain.TopicVoters: regParts,
		domain.TopicVotes: voteParts, domain.TopicStations: regParts, domain.TopicOperatorActions: 1} {
		l.topics[topic] = make([][]projections.LogRecord, n)
		l.events[topic] = make([][]any, n)
	}
	encode := func(e interface{ MarshalJSON() ([]byte, error) }) []byte {
		b, err := e.MarshalJSON()
		if err != nil {
			panic(err) // generated values are valid by construction
		}
		return b
	}
	party, _ := domain.NewParty("Party")
	region, _ := domain.NewRegion("North")
	partitionOf := func(id string, n int) int {
		h := 0
		for _, c := range id {
			h = h*31 + int(c)
		}
		return h % n
	}

	// Registrations, with close markers dropped in at random points.
	closing := rng.IntN(3) // 0: never closed, 1: every partition, 2: some
	markerAt := map[string][]int{}
	for _, topic := range domain.RegistrationTopics {
		markerAt[topic] = make([]int, regParts)
		for p := range regParts {
			markerAt[topic][p] = -1
			if closing == 1 || (closing == 2 && rng.IntN(2) == 0) {
				markerAt[topic][p] = rng.IntN(6)
			}
		}
	}
	marker, _ := domain.NewRegistrationClosed(regParts, ruleAt)
	// Now and then a marker that miscounts the partitions, on partition 0:
	// it must change nothing.
	if rng.IntN(4) == 0 {
		wrong, _ := domain.NewRegistrationClosed(regParts+1, ruleAt)
		topic := domain.RegistrationTopics[rng.IntN(len(domain.RegistrationTopics))]
		l.add(topic, 0, encode(wrong), wrong)
	}
	addRegistration := func(topic, id string, value []byte, event any) {
		p := partitionOf(id, regParts)
		if markerAt[topic][p] == len(l.topics[topic][p]) {
			l.add(topic, p, encode(marker), marker)
		}
		l.add(topic, p, value, event)
	}
	// Contests: a senate race open to one region (or all), a measure that
	// may never register; the default contest needs no registration.
	south, _ := domain.NewRegion("South")
	contestIDs := []string{domain.DefaultContest, "senate", "measure"}
	for _, id := range contestIDs[1:] {
		if id == "measure" && rng.IntN(3) == 0 {
			continue // never registers
		}
		regions := [][]domain.Region{{region}, {south}, nil}[rng.IntN(3)]
		kind := domain.KindCandidate
		if id == "measure" {
			kind = domain.KindMeasure
		}
		c, _ := domain.NewContest(id, "Contest "+id, kind, regions)
		ev := domain.ContestRegistered{Contest: c}
		addRegistration(domain.TopicContests, id, encode(ev), ev)
	}
	var candidateIDs []string
	for i, contest := range []string{domain.DefaultContest, domain.DefaultContest, domain.DefaultContest, "senate", "senate", "measure"} {
		id := fmt.Sprintf("c%d", i)
		candidateIDs = append(candidateIDs, id)
		for range 1 + rng.IntN(2) { // a correction now and then, sometimes naming another contest
			c, _ := domain.NewCandidate(id, fmt.Sprintf("Candidate %d.%d", i, rng.IntN(9)), party, "", "", "")
			in := contest
			if rng.IntN(6) == 0 {
				in = contestIDs[rng.IntN(len(contestIDs))]
			}
			c, _ = c.InContest(in)
			ev := domain.CandidateRegistered{Candidate: c}
			addRegistration(domain.TopicCandidates, id, encode(ev), ev)
		}
	}
	var voterIDs []string
	for i := range 10 {
		id := fmt.Sprintf("v%d", i)
		voterIDs = append(voterIDs, id)
		if rng.IntN(8) == 0 {
			continue // never registers
		}
		home := region
		if rng.IntN(3) == 0 {
			home = south
		}
		for range 1 + rng.IntN(2) {
			v, _ := domain.NewVoter(id, "Voter", "female", ruleAt.AddDate(-30, 0, 0), home, "Town", ruleAt.AddDate(0, -1, 0))
			ev := domain.VoterRegistered{Voter: v}
			addRegistration(domain.TopicVoters, id, encode(ev), ev)
		}
	}
	// Stations: st-0 to st-2 open on every votes partition before any
	// vote, st-3 at a random point of some partitions (now and then naming
	// another region first), "st-ghost" never; their reports on the
	// stations topic are reporting only, a close sometimes twice.
	var stations []domain.Station
	for i := range 4 {
		r, _ := domain.NewRegion([]string{"North", "South"}[i%2])
		st, _ := domain.NewStation(fmt.Sprintf("st-%d", i), r)
		stations = append(stations, st)
	}
	opening, _ := domain.NewStationOpened(ruleAt.Add(-time.Hour), stations[:3]...)
	for p := range voteParts {
		l.add(domain.TopicVotes, p, encode(opening), opening)
	}
	for _, st := range stations {
		rep, _ := domain.NewStationReport(st, false, ruleAt.Add(-time.Hour))
		l.add(domain.TopicStations, partitionOf(st.ID(), regParts), encode(rep), rep)
		for range rng.IntN(3) {
			rep, _ := domain.NewStationReport(st, true, ruleAt.Add(time.Duration(rng.IntN(40))*time.Minute))
			l.add(domain.TopicStations, partitionOf(st.ID(), regParts), encode(rep), rep)
		}
	}
	for _, topic := range domain.RegistrationTopics {
		for p := range regParts {
			if at := markerAt[topic][p]; at >= len(l.topics[topic][p]) {
				l.add(topic, p, encode(marker), marker)
			}
		}
	}
	// Votes: known and unknown voters and candidates, second votes and
	// redeliveries of the same message; now and then a schedule on a votes
	// partition, a vote outside its window, or a cast_at far from the time
	// it was logged.
	var cast []domain.VoteCast
	for n := range 25 {
		if rng.IntN(10) == 0 {
			// st-3 opens on one partition (rule 7), in its region or,
			// now and then, another: the first opening stands.
			home := stations[3]
			if rng.IntN(3) == 0 {
				home, _ = domain.NewStation("st-3", region)
			}
			late, _ := domain.NewStationOpened(ruleAt.Add(time.Duration(n)*time.Minute), home)
			l.add(domain.TopicVotes, rng.IntN(voteParts), encode(late), late)
		}
		if rng.IntN(12) == 0 {
			// A station closes (rule 6): its close marker on every votes
			// partition, or on some (a close still being written).
			closing, _ := domain.NewStationClosed(ruleAt.Add(time.Duration(n)*time.Minute), stations[rng.IntN(len(stations))].ID())
			for p := range voteParts {
				if rng.IntN(4) > 0 {
					l.add(domain.TopicVotes, p, encode(closing), closing)
				}
			}
		}
		if rng.IntN(10) == 0 {
			open := ruleAt.Add(time.Duration(rng.IntN(20)) * time.Minute)
			schedule, _ := domain.NewElectionScheduled(open, open.Add(time.Duration(1+rng.IntN(20))*time.Minute))
			l.add(domain.TopicVotes, rng.IntN(voteParts), encode(schedule), schedule)
		}
		voter := voterIDs[rng.IntN(len(voterIDs))]
		if rng.IntN(10) == 0 {
			voter = "ghost"
		}
		candidate := candidateIDs[rng.IntN(len(candidateIDs))]
		if rng.IntN(8) == 0 {
			candidate = "c-none"
		}
		// Nanoseconds, as real clocks give: PostgreSQL keeps microseconds.
		at := ruleAt.Add(time.Duration(n)*time.Minute + time.Duration(rng.IntN(1e9)))
		if len(cast) > 0 && rng.IntN(12) == 0 {
			// A vote_id used again for another vote (a producer's error),
			// by a voter of the same partition: decided at its first
			// occurrence. (Used by voters of two partitions, a vote_id is
			// decided where it is read first: README, "How a vote is
			// counted".)
			first := cast[rng.IntN(len(cast))]
			home := domain.VotePartition(first.Vote.VoterID(), voteParts)
			other := first.Vote.VoterID()
			for _, i := range rng.Perm(len(voterIDs)) {
				if domain.VotePartition(voterIDs[i], voteParts) == home {
					other = voterIDs[i]
					break
				}
			}
			v, _ := domain.NewVote(first.Vote.ID(), other, candidateIDs[rng.IntN(len(candidateIDs))], at)
			ev := domain.VoteCast{Vote: v}
			l.addAt(domain.TopicVotes, votePartition(rng, other, voteParts), encode(ev), ev, at)
			continue
		}
		if len(cast) > 0 && rng.IntN(6) == 0 {
			ev := cast[rng.IntN(len(cast))] // published again, later
			l.addAt(domain.TopicVotes, votePartition(rng, ev.Vote.VoterID(), voteParts), encode(ev), ev, at.AddDate(0, 0, 7*rng.IntN(3)))
			continue
		}
		castAt := at
		switch rng.IntN(12) {
		case 0:
			castAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
		case 1:
			castAt = at.AddDate(0, 0, -12) // uploaded late: still counts
		case 2:
			castAt = domain.EarliestPlausible().Add(-time.Hour)
		}
		v, _ := domain.NewVote(fmt.Sprintf("00000000-0000-4000-8000-%012d", n), voter, candidate, castAt)
		contest := contestIDs[rng.IntN(len(contestIDs))]
		if rng.IntN(10) == 0 {
			contest = "nowhere"
		}
		v, _ = v.InContest(contest)
		if rng.IntN(3) == 0 { // through a station, of the voter's region or not, registered or not
			i := rng.IntN(5)
			name := []string{"st-0", "st-1", "st-2", "st-3", "st-ghost"}[i]
			home := []string{"North", "South", "North", "South", "North"}[i]
			if rng.IntN(8) == 0 { // stamped with another region than it reported
				home = "South"
			}
			region, _ := domain.NewRegion(home)
			station, _ := domain.NewStation(name, region)
			v = v.WithStation(station)
		}
		if rng.IntN(6) == 0 { // an offline station's late upload, days after the vote was cast
			at = at.AddDate(0, 0, 1+rng.IntN(12))
		}
		ev := domain.VoteCast{Vote: v}
		cast = append(cast, ev)
		l.addAt(domain.TopicVotes, votePartition(rng, voter, voteParts), encode(ev), ev, at)
	}
	return l
}

// votePartition is the partition a producer sends a vote of voter to, of
// n: mostly murmur2 of the voter_id, as the contract says, and now and
// then by sarama's default FNV-1a or by CRC32 (librdkafka's consistent
// partitioner), which misroute some votes (rule 0).
func votePartition(rng *rand.Rand, voter string, n int) int {
	switch rng.IntN(8) {
	case 0:
		h := fnv.New32a()
		h.Write([]byte(voter))
		p := int32(h.Sum32()) % int32(n)
		if p < 0 {
			p = -p
		}
		return int(p)
	case 1:
		return int(crc32.ChecksumIEEE([]byte(voter)) % uint32(n))
	}
	return int(domain.VotePartition(voter, n))
}

// deliver feeds the log to store as the live projector would, in a random
// interleaving: each step takes a few next messages of one topic from
// random partitions (each partition in order), and now and then a
// "restart" rewinds some partitions so their messages are delivered again.
func deliver(t *testing.T, rng *rand.Rand, store *write.Store, l *testLog) {
	t.Helper()
	ctx := context.Background()
	store.SetVotePartitions(len(l.topics[domain.TopicVotes]))
	topics := domain.EventTopics
	next := map[string][]int{}
	for _, topic := range topics {
		next[topic] = make([]int, len(l.topics[topic]))
	}
	remaining := func() bool {
		for _, topic := range topics {
			for p, recs := range l.topics[topic] {
				if next[topic][p] < len(recs) {
					return true
				}
			}
		}
		return false
	}
	restarts := 0
	for remaining() {
		if restarts < 3 && rng.IntN(12) == 0 {
			restarts++
			for _, topic := range topics {
				for p := range next[topic] {
					next[topic][p] = max(0, next[topic][p]-rng.IntN(4))
				}
			}
		}
		topic := topics[rng.IntN(len(topics))]
		var batch []projections.LogRecord
		for range 1 + rng.IntN(4) {
			p := rng.IntN(len(l.topics[topic]))
			if next[topic][p] < len(l.topics[topic][p]) {
				batch = append(batch, l.topics[topic][p][next[topic][p]])
				next[topic][p]++
			}
		}
		if len(batch) == 0 {
			continue
		}
		if err := apply(ctx, store, topic, len(l.topics[topic]), batch); err != nil {
			t.Fatal(err)
		}
	}
}

// apply hands a batch to the store the way the live handlers do: a close
// marker on its own, registrations and votes in batches.
func apply(ctx context.Context, store *write.Store, topic string, partitions int, batch []projections.LogRecord) error {
	var contests []projections.Envelope[domain.ContestRegistered]
	var reports []projections.Envelope[domain.StationReported]
	var cands []projections.Envelope[domain.CandidateRegistered]
	var voters []projections.Envelope[domain.VoterRegistered]
	var votes []projections.Envelope[domain.VoteCast]
	flush := func() error {
		if len(contests) > 0 {
			if _, err := store.ApplyContests(ctx, contests); err != nil {
				return err
			}
		}
		if len(reports) > 0 {
			if err := store.ApplyStationReports(ctx, reports); err != nil {
				return err
			}
		}
		if len(cands) > 0 {
			if _, err := store.ApplyCandidates(ctx, cands); err != nil {
				return err
			}
		}
		if len(voters) > 0 {
			if _, err := store.ApplyVoters(ctx, voters); err != nil {
				return err
			}
		}
		if len(votes) > 0 {
			if _, err := store.ApplyVotes(ctx, votes); err != nil {
				return err
			}
		}
		contests, reports, cands, voters, votes = nil, nil, nil, nil, nil
		return nil
	}
	for _, r := range batch {
		pos := projections.Position{Topic: topic, Partition: r.Partition, Offset: r.Offset, Time: r.Time}
		if c, ok, err := domain.DecodeVotesControl(r.Value); ok && topic == domain.TopicVotes {
			if err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
			if err := store.RecordVotesControl(ctx, pos, c); err != nil {
				return err
			}
			continue
		}
		if m, ok, err := domain.DecodeRegistrationClosed(r.Value); ok {
			if err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
			if _, err := store.CloseRegistration(ctx, pos, m, partitions); err != nil {
				return err
			}
			continue
		}
		switch topic {
		case domain.TopicStations:
			ev, err := domain.DecodeStationReported(r.Value)
			if err != nil {
				return err
			}
			reports = append(reports, projections.Envelope[domain.StationReported]{Event: ev, Position: pos})
			continue
		case domain.TopicContests:
			ev, err := domain.DecodeContestRegistered(r.Value)
			if err != nil {
				return err
			}
			contests = append(contests, projections.Envelope[domain.ContestRegistered]{Event: ev, Position: pos})
		case domain.TopicCandidates:
			ev, err := domain.DecodeCandidateRegistered(r.Value)
			if err != nil {
				return err
			}
			cands = append(cands, projections.Envelope[domain.CandidateRegistered]{Event: ev, Position: pos})
		case domain.TopicVoters:
			ev, err := domain.DecodeVoterRegistered(r.Value)
			if err != nil {
				return err
			}
			voters = append(voters, projections.Envelope[domain.VoterRegistered]{Event: ev, Position: pos})
		default:
			ev, err := domain.DecodeVoteCast(r.Value)
			if err != nil {
				return err
			}
			votes = append(votes, projections.Envelope[domain.VoteCast]{Event: ev, Position: pos})
		}
	}
	return flush()
}

// outcome is the projection's decisions, in domain.Count's terms.
type outcome struct {
	counted   map[string]string // voter/contest → vote_id (a ballot names no candidate, 00040)
	tallies   map[string]string // candidate → votes
	rejected  map[string]string // vote_id → reason
	held      []string
	misrouted [][2]int64
	refused   map[string]int
	stations  map[string]string // station/outcome → votes
}

func readOutcome(t *testing.T, pool *pgxpool.Pool) outcome {
	t.Helper()
	ctx := context.Background()
	o := outcome{counted: map[string]string{}, tallies: map[string]string{}, rejected: map[string]string{}, refused: map[string]int{}, stations: map[string]string{}}
	query := func(sql string, scan func(cols ...string)) {
		rows, err := pool.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			cols := make([]string, len(vals))
			for i, v := range vals {
				cols[i] = fmt.Sprint(v)
			}
			scan(cols...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	query("SELECT voter_id, contest_id, vote_id::text FROM ballots", func(c ...string) { o.counted[c[0]+"/"+c[1]] = c[2] })
	query("SELECT candidate_id, votes::text FROM candidate_tallies_summed WHERE votes > 0", func(c ...string) { o.tallies[c[0]] = c[1] })
	query("SELECT vote_id::text, reason FROM rejections", func(c ...string) { o.rejected[c[0]] = c[1] })
	query("SELECT vote_id::text FROM held_votes ORDER BY vote_id", func(c ...string) { o.held = append(o.held, c[0]) })
	query("SELECT station_id, outcome, votes::text FROM station_tallies_summed", func(c ...string) { o.stations[c[0]+"/"+c[1]] = c[2] })
	query(`SELECT partition, "offset" FROM misrouted_votes ORDER BY partition, "offset"`, func(c ...string) {
		var part, off int64
		fmt.Sscan(c[0], &part)
		fmt.Sscan(c[1], &off)
		o.misrouted = append(o.misrouted, [2]int64{part, off})
	})
	query("SELECT topic, count(*)::text FROM refused_registrations GROUP BY topic", func(c ...string) {
		var n int
		fmt.Sscan(c[1], &n)
		o.refused[c[0]] = n
	})
	return o
}

func compareOutcome(want domain.Outcome, got outcome) string {
	var diffs []string
	wantCounted := map[string]string{}
	for key, v := range want.Counted {
		wantCounted[key.Voter+"/"+key.Contest] = v.ID()
	}
	// Whom each ballot is for is only in the tallies.
	perCandidate := map[string]int{}
	for _, v := range want.Counted {
		perCandidate[v.CandidateID()]++
	}
	wantTallies := map[string]string{}
	for c, n := range perCandidate {
		wantTallies[c] = fmt.Sprint(n)
	}
	wantRejected := map[string]string{}
	for id, r := range want.Rejected {
		wantRejected[id] = r.String()
	}
	wantStations := map[string]int{}
	for _, v := range want.Counted {
		if st := v.Station().ID(); st != "" {
			wantStations[st+"/counted"]++
		}
	}
	for id, r := range want.Rejected {
		if st := want.Stations[id]; st != "" {
			wantStations[st+"/"+r.String()]++
		}
	}
	wantStationVotes := map[string]string{}
	for k, n := range wantStations {
		wantStationVotes[k] = fmt.Sprint(n)
	}
	for _, m := range []struct {
		name      string
		want, got map[string]string
	}{{"counted", wantCounted, got.counted}, {"candidate tallies", wantTallies, got.tallies}, {"rejected", wantRejected, got.rejected}, {"station tallies", wantStationVotes, got.stations}} {
		keys := map[string]bool{}
		for k := range m.want {
			keys[k] = true
		}
		for k := range m.got {
			keys[k] = true
		}
		sorted := slices.Sorted(func(yield func(string) bool) {
			for k := range keys {
				if !yield(k) {
					return
				}
			}
		})
		for _, k := range sorted {
			if m.want[k] != m.got[k] {
				diffs = append(diffs, fmt.Sprintf("%s %s: want %q, got %q", m.name, k, m.want[k], m.got[k]))
			}
		}
	}
	if h := want.SortedHeld(); !slices.Equal(h, got.held) && !(len(h) == 0 && len(got.held) == 0) {
		diffs = append(diffs, fmt.Sprintf("held: want %v, got %v", h, got.held))
	}
	if !slices.Equal(want.Misrouted, got.misrouted) {
		diffs = append(diffs, fmt.Sprintf("misrouted: want %v, got %v", want.Misrouted, got.misrouted))
	}
	for _, topic := range domain.RegistrationTopics {
		if want.Refused[topic] != got.refused[topic] {
			diffs = append(diffs, fmt.Sprintf("refused %s: want %d, got %d", topic, want.Refused[topic], got.refused[topic]))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n")
}

// checkSelf fails t when the projection's self-check (votewatch verify) does.
func checkSelf(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	results, err := read.NewResults(pool)
	if err != nil {
		t.Fatal(err)
	}
	checks, err := results.SelfCheck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if !c.OK {
			t.Errorf("verify: %s: %s", c.Name, c.Detail)
		}
	}
}

// memLog serves a testLog as the replay reads Kafka.
type memLog struct{ l *testLog }

func (m memLog) HighWatermarks(_ context.Context, topic string) (map[int32]int64, error) {
	out := map[int32]int64{}
	for p, recs := range m.l.topics[topic] {
		out[int32(p)] = int64(len(recs))
	}
	return out, nil
}

func (m memLog) LowWatermarks(_ context.Context, topic string) (map[int32]int64, error) {
	out := map[int32]int64{}
	for p := range m.l.topics[topic] {
		out[int32(p)] = 0
	}
	return out, nil
}

func (m memLog) ReadRange(_ context.Context, topic string, from, to map[int32]int64, fn func([]projections.LogRecord) error) error {
	for p, recs := range m.l.topics[topic] {
		lo, hi := from[int32(p)], to[int32(p)]
		if hi > lo {
			if err := fn(recs[lo:hi]); err != nil {
				return err
			}
		}
	}
	return nil
}

func replayVerify(t *testing.T, pool *pgxpool.Pool, l *testLog) rebuild.ReplayReport {
	t.Helper()
	rep, err := replay(t, pool, l, rebuild.ReplayOptions{Mode: rebuild.ReplayVerify})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// replayVerifyWith is replayVerify with the rebuilder set up by with.
func replayVerifyWith(t *testing.T, pool *pgxpool.Pool, l *testLog, with func(*rebuild.Rebuilder)) rebuild.ReplayReport {
	t.Helper()
	rep, err := replayWith(t, pool, l, rebuild.ReplayOptions{Mode: rebuild.ReplayVerify}, with)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// replay rebuilds the projection behind pool from l with opt.
func replay(t *testing.T, pool *pgxpool.Pool, l *testLog, opt rebuild.ReplayOptions) (rebuild.ReplayReport, error) {
	t.Helper()
	return replayWith(t, pool, l, opt, func(*rebuild.Rebuilder) {})
}

func replayWith(t *testing.T, pool *pgxpool.Pool, l *testLog, opt rebuild.ReplayOptions, with func(*rebuild.Rebuilder)) (rebuild.ReplayReport, error) {
	t.Helper()
	ctx := context.Background()
	dsn := pool.Config().ConnString()
	open := func(ctx context.Context, schema string) (*pgxpool.Pool, error) {
		p, err := postgres.ConnectSchema(ctx, dsn, schema, 4)
		if err != nil {
			return nil, err
		}
		m, err := postgres.NewMigrator(p)
		if err != nil {
			p.Close()
			return nil, err
		}
		defer m.Close()
		if _, err := m.Up(ctx); err != nil {
			p.Close()
			return nil, err
		}
		return p, nil
	}
	rb, err := rebuild.NewRebuilder(pool, postgres.Schema, open, memLog{l}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	with(rb)
	return rb.Run(ctx, opt)
}

// A vote_id is decided once, at its first occurrence, whoever uses it
// again and however the copies are batched; replay agrees (found in
// review: live counted a reused vote_id twice, replay counted a later copy
// of a rejected one).
func TestAVoteIDIsDecidedOnceLiveAndInReplay(t *testing.T) {
	t.Parallel()
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("one batch=%v", batched), func(t *testing.T) {
			t.Parallel()
			l := &testLog{topics: map[string][][]projections.LogRecord{}, events: map[string][][]any{}}
			for _, topic := range domain.EventTopics {
				l.topics[topic] = make([][]projections.LogRecord, 1)
				l.events[topic] = make([][]any, 1)
			}
			enc := func(e interface{ MarshalJSON() ([]byte, error) }) []byte { b, _ := e.MarshalJSON(); return b }
			party, _ := domain.NewParty("P")
			region, _ := domain.NewRegion("North")
			c, _ := domain.NewCandidate("c1", "C1", party, "", "", "")
			l.add(domain.TopicCandidates, 0, enc(domain.CandidateRegistered{Candidate: c}), domain.CandidateRegistered{Candidate: c})
			for _, id := range []string{"x", "y", "z"} {
				v, _ := domain.NewVoter(id, "V", "f", ruleAt.AddDate(-30, 0, 0), region, "T", ruleAt.AddDate(0, -1, 0))
				l.add(domain.TopicVoters, 0, enc(domain.VoterRegistered{Voter: v}), domain.VoterRegistered{Voter: v})
			}
			marker, _ := domain.NewRegistrationClosed(1, ruleAt)
			for _, topic := range domain.RegistrationTopics {
				l.add(topic, 0, enc(marker), marker)
			}
			vote := func(id, voter, candidate string) {
				v, _ := domain.NewVote(id, voter, candidate, ruleAt)
				ev := domain.VoteCast{Vote: v}
				l.addAt(domain.TopicVotes, 0, enc(ev), ev, ruleAt)
			}
			u, w := "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
			vote(u, "z", "c-none") // rejected: unknown candidate
			vote(u, "z", "c1")     // the same vote_id again: changes nothing
			vote(w, "x", "c1")     // counted
			vote(w, "y", "c1")     // w used again by y: changes nothing
			pool := testutil.Pool(t)
			store, err := write.NewStore(pool)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for _, topic := range domain.EventTopics {
				recs := l.topics[topic][0]
				if batched {
					if err := apply(ctx, store, topic, 1, recs); err != nil {
						t.Fatal(err)
					}
					continue
				}
				for _, r := range recs {
					if err := apply(ctx, store, topic, 1, []projections.LogRecord{r}); err != nil {
						t.Fatal(err)
					}
				}
			}
			want := domain.Count(l.spec())
			if diff := compareOutcome(want, readOutcome(t, pool)); diff != "" {
				t.Fatalf("live differs from domain.Count:\n%s", diff)
			}
			if len(want.Counted) != 1 || want.Rejected[u] != domain.RejectUnknownCandidate {
				t.Fatalf("the specification itself: counted %v, rejected %v", want.Counted, want.Rejected)
			}
			if rep := replayVerify(t, pool, l); len(rep.Differences) > 0 {
				t.Fatalf("replay differs from live:\n%s", projections.FormatDiffs(rep.Differences))
			}
		})
	}
}
