package projections

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/sql/db"
)

// errMixedPartitions stops the direct path when a vote_id or a voter
// appears on two partitions (a producer that keyed a vote by something
// other than its voter). The rule then orders them by partition, which a
// read that interleaves partitions cannot do as it goes; the staged path
// can, and takes over.
var errMixedPartitions = errors.New("a vote_id or a voter on more than one partition")

// verdictKey is what vote_verdict's answer depends on, besides whether the
// voter already has a counted vote in the contest.
type verdictKey struct {
	contest, candidate, voterRegion, stationRegion string
}

// decodedChunk is a batch of decoded records and the register's facts
// of the voters it names first.
type decodedChunk struct {
	recs   []decodedRecord
	voters []db.ListVoterFactsRow
}

// decodedRecord is a votes-topic record after decoding: a schedule, a vote,
// or an error that makes it a dead letter.
type decodedRecord struct {
	rec        LogRecord
	isSchedule bool
	schedule   domain.ElectionScheduled
	vote       domain.Vote
	id         uuid.UUID
	err        error
	// voter indexes the decider's voterState (set by resolve).
	voter int32
}

// directChunk is how many records the direct path's stages pass on at a
// time.
const directChunk = 8192

// directVotes is the replay's fast path for a fresh projection, whose
// register is complete (registrations are replayed first): it reads the
// votes topic, decodes on every core, decides each vote in Go in log order
// from vote_verdict's answers, and COPYs the ballots, rejections and held
// votes straight into their tables, with the ballots' key and index built
// after the load. The tallies are grouped in Go as the ballots are decided
// and written once at the end. Everything is one transaction, except the
// schedules and dead letters recorded through store in their own: when it
// returns errMixedPartitions none of the ballots, rejections, held votes or
// tallies remain, and the staged fold records those again idempotently.
//
// Four stages overlap, passing chunks of directChunk records: reading and
// decoding (every core), looking up the voters the replayed registrations
// did not keep (none, normally), deciding (one goroutine, in log order) and
// COPY (the database's one backend). Nothing reads the register back or
// folds the ballots after the load: the end is the ballots' key and one
// statement of tallies.
func (r *Rebuilder) directVotes(ctx context.Context, pool *pgxpool.Pool, store *Store, closed bool, from, to map[int32]int64, progress func(int)) (int64, error) {
	started := time.Now()
	d := newDirectDecider(pool, closed)
	// The registrations just replayed kept their voters' facts; when they
	// are the whole register, no vote needs a look-up.
	inRegister, err := db.New(pool).CountRegister(ctx)
	if err != nil {
		return 0, fmt.Errorf("count the register: %w", err)
	}
	kept := !r.lookUpVoters && r.register != nil && int64(len(r.register)) == inRegister
	if kept {
		d.register = r.register
	} else {
		r.log.Debug("the register is looked up per chunk", "kept", len(r.register), "registered", inRegister)
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin direct load: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// A fresh projection's ballots are empty: loading them without their
	// key and index, then building both once, costs far less than
	// maintaining them row by row.
	if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '256MB'; ALTER TABLE ballots DROP CONSTRAINT ballots_pkey; DROP INDEX ballots_vote_id`); err != nil {
		return 0, fmt.Errorf("drop the ballots' key: %w", err)
	}

	var (
		n       int64
		decode  time.Duration // decoding, on every core
		lookup  time.Duration // looking the voters up
		waitIn  time.Duration // the decider waiting for decoded votes
		waitOut time.Duration // the decider waiting for COPY
	)
	decodedChunks := make(chan []decodedRecord, 4)
	chunks := make(chan decodedChunk, 4)
	copies := make(chan decided, 2)
	g, gctx := errgroup.WithContext(ctx)
	// Reading and decoding, then looking the voters up, run ahead of
	// deciding, each in its own goroutine.
	g.Go(func() error {
		defer close(decodedChunks)
		return r.events.ReadRange(gctx, domain.TopicVotes, from, to, func(recs []LogRecord) error {
			n += int64(len(recs))
			defer progress(len(recs))
			// One poll can return most of the topic: bounded chunks keep
			// the stages overlapping.
			for len(recs) > 0 {
				chunk := recs[:min(len(recs), directChunk)]
				recs = recs[len(chunk):]
				// A new slice each time: the decider holds it after this
				// returns.
				t := time.Now()
				decoded := decodeVoteRecords(r.opener, chunk, nil)
				decode += time.Since(t)
				for i := range decoded {
					if errors.Is(decoded[i].err, domain.ErrTallyKey) {
						return decoded[i].err // not the message's fault: no dead letter
					}
				}
				select {
				case decodedChunks <- decoded:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	})
	g.Go(func() error {
		defer close(chunks)
		q := db.New(pool)
		asked := map[string]bool{}
		for recs := range decodedChunks {
			c := decodedChunk{recs: recs}
			if kept {
				select {
				case chunks <- c:
					continue
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			var ids []string
			for _, rec := range recs {
				if rec.err == nil && !rec.isSchedule && !asked[rec.vote.VoterID()] {
					asked[rec.vote.VoterID()] = true
					ids = append(ids, rec.vote.VoterID())
				}
			}
			if len(ids) > 0 {
				var err error
				t := time.Now()
				if c.voters, err = q.ListVoterFacts(gctx, ids); err != nil {
					return fmt.Errorf("look voters up: %w", err)
				}
				lookup += time.Since(t)
			}
			select {
			case chunks <- c:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		defer close(copies)
		for {
			t := time.Now()
			c, ok := <-chunks
			waitIn += time.Since(t)
			if !ok {
				return nil
			}
			d.addFacts(c.voters)
			if err := d.resolve(gctx, c.recs); err != nil {
				return err
			}
			out, err := d.decide(gctx, store, c.recs)
			if err != nil {
				return err
			}
			t = time.Now()
			select {
			case copies <- out:
			case <-gctx.Done():
				return gctx.Err()
			}
			waitOut += time.Since(t)
		}
	})
	// COPY overlaps deciding: this goroutine writes what the other decided.
	g.Go(func() error {
		q := db.New(tx)
		for c := range copies {
			if len(c.ballots) > 0 {
				if _, err := q.CopyBallots(gctx, c.ballots); err != nil {
					return fmt.Errorf("copy ballots: %w", err)
				}
			}
			if len(c.held) > 0 {
				if _, err := q.CopyHeldVotes(gctx, c.held); err != nil {
					return fmt.Errorf("copy held votes: %w", err)
				}
			}
			if len(c.rejections) > 0 {
				if _, err := q.CopyRejections(gctx, c.rejections); err != nil {
					return fmt.Errorf("copy rejections: %w", err)
				}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		if errors.Is(err, errMixedPartitions) {
			return n, err
		}
		return n, fmt.Errorf("replay votes: %w", err)
	}
	loaded := time.Now()
	r.log.Debug("direct load", "decoding", decode, "looking voters up", lookup, "decider waiting for votes", waitIn, "decider waiting for COPY", waitOut)

	q := db.New(tx)
	if d.namesDefault {
		if err := q.EnsureDefaultContest(ctx); err != nil {
			return n, fmt.Errorf("default contest: %w", err)
		}
	}
	// ANALYZE although nothing here needs statistics: the live path plans
	// against these tables as soon as they are swapped in, and a bulk-loaded
	// table without statistics looks empty to the planner until autovacuum
	// gets to it.
	if _, err := tx.Exec(ctx, `ALTER TABLE ballots ADD PRIMARY KEY (voter_id, contest_id); CREATE INDEX ballots_vote_id ON ballots (vote_id); ANALYZE ballots; ANALYZE voters`); err != nil {
		return n, fmt.Errorf("build the ballots' key: %w", err)
	}
	keyed := time.Now()
	tallies, err := d.tallies(ctx, q)
	if err != nil {
		return n, err
	}
	if err := q.WriteDirectTallies(ctx, tallies); err != nil {
		return n, fmt.Errorf("write tallies: %w", err)
	}
	p := db.AdvanceOffsetsParams{Topic: domain.TopicVotes}
	for part, next := range d.next {
		p.Partitions = append(p.Partitions, part)
		p.NextOffsets = append(p.NextOffsets, next)
		p.LastEventAts = append(p.LastEventAts, d.last[part])
	}
	if len(p.Partitions) > 0 {
		if err := q.AdvanceOffsets(ctx, p); err != nil {
			return n, fmt.Errorf("advance offsets: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return n, fmt.Errorf("commit direct load: %w", err)
	}
	r.log.Info("bulk votes, direct", "votes", n, "load", loaded.Sub(started), "key", keyed.Sub(loaded), "tallies", time.Since(keyed))
	return n, nil
}

// decodeVoteRecords decodes recs on every core into out, in order.
func decodeVoteRecords(opener *domain.Opener, recs []LogRecord, out []decodedRecord) []decodedRecord {
	out = append(out, make([]decodedRecord, len(recs))...)
	workers := runtime.GOMAXPROCS(0)
	per := (len(recs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(recs); lo += per {
		hi := min(lo+per, len(recs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				out[i] = decodeVoteRecord(opener, recs[i])
			}
		}()
	}
	wg.Wait()
	return out
}

func decodeVoteRecord(opener *domain.Opener, rec LogRecord) decodedRecord {
	d := decodedRecord{rec: rec}
	if s, ok, err := domain.DecodeElectionScheduled(rec.Value); ok {
		d.isSchedule, d.schedule, d.err = true, s, err
		return d
	}
	ev, err := opener.DecodeVoteCast(rec.Value)
	if err != nil {
		d.err = err
		return d
	}
	d.vote = ev.Vote
	if d.id, err = uuid.Parse(ev.Vote.ID()); err != nil {
		d.err = fmt.Errorf("vote id %q: %w", ev.Vote.ID(), err)
	}
	return d
}

// voterFacts is what the register says of a voter that deciding and
// counting its votes needs.
type voterFacts struct {
	region, gender string
	// birth is the birth date in days since 1970-01-01.
	birth int32
}

// voterState is what the decider knows of a voter: the register's facts
// and, as it decides, where the voter's votes are and which contests they
// were counted or held in.
type voterState struct {
	voterFacts
	registered bool
	// part is the partition of the voter's first vote, when seen.
	part             int32
	seen             bool
	counted, blocked []string
}

func hasContest(contests []string, c string) bool {
	for _, x := range contests {
		if x == c {
			return true
		}
	}
	return false
}

// directDecider decides votes in log order, as domain.Count does, asking
// vote_verdict for each combination of register facts once, and groups
// the ballots for the tallies as it counts them.
type directDecider struct {
	pool   *pgxpool.Pool
	closed bool
	// register holds the facts of the registered voters seen so far (or of
	// all of them); voters indexes states: one lookup per vote gives the
	// register's facts and the voter's progress.
	register map[string]voterFacts
	voters   map[string]int32
	states   []voterState
	verdicts map[verdictKey][2]string
	// votePart tells on which partition a vote_id was first seen.
	votePart map[uuid.UUID]int32
	// schedules holds the latest schedule read on each partition.
	schedules map[int32]*domain.ElectionScheduled
	// next and last are each partition's next offset and newest cast_at
	// among its votes, for the applied offsets.
	next         map[int32]int64
	last         map[int32]time.Time
	namesDefault bool
	// The ballots grouped as BallotGroups groups them, and the other
	// tallies counted.
	counts     map[countKey]int64
	genders    map[[2]string]int64
	ages       map[ageKey]int64
	rejections map[[2]string]int64
	stations   map[[2]string]int64
}

// countKey is BallotGroups' grouping: minute is the ballot's
// cast_at truncated to the minute, in Unix seconds.
type countKey struct {
	region, candidate, contest string
	minute                     int64
}

// ageKey groups ballots by birth date and polling day (days since
// 1970-01-01, UTC), the arguments of age_band, and candidate.
type ageKey struct {
	birth, day int32
	candidate  string
}

func newDirectDecider(pool *pgxpool.Pool, closed bool) *directDecider {
	return &directDecider{
		pool:       pool,
		closed:     closed,
		register:   map[string]voterFacts{},
		voters:     map[string]int32{},
		verdicts:   map[verdictKey][2]string{},
		votePart:   map[uuid.UUID]int32{},
		schedules:  map[int32]*domain.ElectionScheduled{},
		next:       map[int32]int64{},
		last:       map[int32]time.Time{},
		counts:     map[countKey]int64{},
		genders:    map[[2]string]int64{},
		ages:       map[ageKey]int64{},
		rejections: map[[2]string]int64{},
		stations:   map[[2]string]int64{},
	}
}

// addFacts adds the facts of voters first named in the next chunk.
func (d *directDecider) addFacts(voters []db.ListVoterFactsRow) {
	for _, v := range voters {
		d.register[v.VoterID] = voterFacts{region: v.Region, gender: v.Gender, birth: unixDay(v.BirthDate.Time)}
	}
}

// voter returns the index of voterID's state, adding it at the voter's
// first vote. The register has the facts of every registered voter named
// so far: a voter it does not know is not registered.
func (d *directDecider) voter(voterID string) int32 {
	if i, ok := d.voters[voterID]; ok {
		return i
	}
	f, registered := d.register[voterID]
	i := int32(len(d.states))
	d.states = append(d.states, voterState{voterFacts: f, registered: registered})
	d.voters[voterID] = i
	return i
}

func (d *directDecider) key(v domain.Vote, st *voterState) verdictKey {
	return verdictKey{contest: v.ContestID(), candidate: v.CandidateID(), voterRegion: st.region, stationRegion: v.Station().Region().String()}
}

// resolve looks up each vote's voter and asks vote_verdict, in one
// statement, for the combinations in recs not asked before.
func (d *directDecider) resolve(ctx context.Context, recs []decodedRecord) error {
	p := db.VoteVerdictsParams{RegistrationClosed: d.closed}
	var keys []verdictKey
	asked := map[verdictKey]bool{}
	for i := range recs {
		r := &recs[i]
		if r.err != nil || r.isSchedule {
			continue
		}
		r.voter = d.voter(r.vote.VoterID())
		k := d.key(r.vote, &d.states[r.voter])
		if _, ok := d.verdicts[k]; ok || asked[k] {
			continue
		}
		asked[k] = true
		p.Ords = append(p.Ords, int32(len(keys)))
		p.ContestIDs = append(p.ContestIDs, k.contest)
		p.CandidateIDs = append(p.CandidateIDs, k.candidate)
		p.VoterRegions = append(p.VoterRegions, k.voterRegion)
		p.StationRegions = append(p.StationRegions, k.stationRegion)
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil
	}
	rows, err := db.New(d.pool).VoteVerdicts(ctx, p)
	if err != nil {
		return fmt.Errorf("ask vote_verdict: %w", err)
	}
	if len(rows) != len(keys) {
		return fmt.Errorf("ask vote_verdict: %d answers for %d questions", len(rows), len(keys))
	}
	for _, row := range rows {
		d.verdicts[keys[row.Ord]] = [2]string{row.First, row.Again}
	}
	return nil
}

// decided is what decide makes of a batch: rows to COPY.
type decided struct {
	ballots    []db.CopyBallotsParams
	rejections []db.CopyRejectionsParams
	held       []db.CopyHeldVotesParams
}

// decide applies the rule to recs (resolved) in order and returns the rows
// to COPY. Schedules and dead letters are recorded through store, as the
// staged path records them.
func (d *directDecider) decide(ctx context.Context, store *Store, recs []decodedRecord) (out decided, err error) {
	out.ballots = make([]db.CopyBallotsParams, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		pos := Position{Topic: domain.TopicVotes, Partition: r.rec.Partition, Offset: r.rec.Offset, Time: r.rec.Time}
		if r.isSchedule {
			if r.err == nil {
				s := r.schedule
				d.schedules[pos.Partition] = &s
				err = store.RecordSchedule(ctx, pos, s)
			} else {
				err = store.RecordDeadLetter(ctx, pos, r.err.Error(), r.rec.Value)
			}
			if err != nil {
				return decided{}, err
			}
			continue
		}
		if r.err != nil {
			if err := store.RecordDeadLetter(ctx, pos, r.err.Error(), r.rec.Value); err != nil {
				return decided{}, err
			}
			continue
		}
		v := r.vote
		st := &d.states[r.voter]
		d.next[pos.Partition] = max(d.next[pos.Partition], pos.Offset+1)
		if v.CastAt().After(d.last[pos.Partition]) {
			d.last[pos.Partition] = v.CastAt()
		}
		if v.ContestID() == domain.DefaultContest {
			d.namesDefault = true
		}
		if !st.seen {
			st.seen, st.part = true, pos.Partition
		} else if st.part != pos.Partition {
			return decided{}, errMixedPartitions
		}
		// A vote is decided at its first occurrence: a redelivery (on the
		// same partition, as its voter's) changes nothing.
		if p, seen := d.votePart[r.id]; seen {
			if p != pos.Partition {
				return decided{}, errMixedPartitions
			}
			continue
		}
		d.votePart[r.id] = pos.Partition

		var stationID, stationRegion pgtype.Text
		if s := v.Station(); s.ID() != "" {
			stationID = pgtype.Text{String: s.ID(), Valid: true}
			stationRegion = pgtype.Text{String: s.Region().String(), Valid: true}
		}
		id := pgtype.UUID{Bytes: r.id, Valid: true}
		castAt := v.CastAt()
		reject := func(reason string) {
			at := r.rec.Time
			if at.IsZero() {
				at = time.Now()
			}
			out.rejections = append(out.rejections, db.CopyRejectionsParams{VoteID: id, Reason: reason, VoterID: v.VoterID(),
				CastAt: castAt, StationID: stationID, ContestID: v.ContestID(), RecordedAt: at})
			d.rejections[[2]string{v.ContestID(), reason}]++
			if stationID.Valid {
				d.stations[[2]string{stationID.String, reason}]++
			}
		}
		if reason, rejected := domain.CheckCastTime(v.CastAt(), r.rec.Time, d.schedules[pos.Partition]); rejected {
			reject(reason.String())
			continue
		}
		answers, ok := d.verdicts[d.key(v, st)]
		if !ok {
			return decided{}, fmt.Errorf("vote %s: no verdict asked", v.ID())
		}
		verdict := answers[0]
		if hasContest(st.counted, v.ContestID()) {
			verdict = answers[1]
		}
		// A held vote holds every later vote of its voter in the contest,
		// so that the first vote still wins once they are released.
		if hasContest(st.blocked, v.ContestID()) {
			verdict = "held"
		}
		switch verdict {
		case "counted":
			st.counted = append(st.counted, v.ContestID())
			out.ballots = append(out.ballots, db.CopyBallotsParams{VoterID: v.VoterID(), VoteID: id, CandidateID: v.CandidateID(),
				Region: st.region, CastAt: castAt, StationID: stationID, ContestID: v.ContestID()})
			d.count(v, st, stationID)
		case "held":
			st.blocked = append(st.blocked, v.ContestID())
			loggedAt := knownTime(r.rec.Time)
			out.held = append(out.held, db.CopyHeldVotesParams{VoteID: id, VoterID: v.VoterID(), CandidateID: v.CandidateID(), CastAt: castAt,
				Partition: pos.Partition, Offset: pos.Offset, StationID: stationID, StationRegion: stationRegion, ContestID: v.ContestID(), LoggedAt: loggedAt})
		default:
			reject(verdict)
		}
	}
	return out, nil
}

// count groups a counted ballot as BallotGroups and StationCounts
// would group its row: by region, candidate, contest and minute; by the
// voter's gender and by age_band's arguments (registered voters only, as
// the fold's join with the register); by station.
func (d *directDecider) count(v domain.Vote, st *voterState, stationID pgtype.Text) {
	// Microseconds, as the projection keeps cast_at.
	at := v.CastAt().Truncate(time.Microsecond)
	d.counts[countKey{region: st.region, candidate: v.CandidateID(), contest: v.ContestID(), minute: at.Truncate(time.Minute).Unix()}]++
	if st.registered {
		d.genders[[2]string{st.gender, v.CandidateID()}]++
		d.ages[ageKey{birth: st.birth, day: unixDay(at), candidate: v.CandidateID()}]++
	}
	if stationID.Valid {
		d.stations[[2]string{stationID.String, "counted"}]++
	}
}

// tallies returns what WriteDirectTallies writes, asking age_band once
// per birth date and polling day.
func (d *directDecider) tallies(ctx context.Context, q *db.Queries) (db.WriteDirectTalliesParams, error) {
	var t tallyRows
	for k, n := range d.counts {
		t.count(k.region, k.candidate, k.contest, time.Unix(k.minute, 0).UTC(), n)
	}
	for k, n := range d.genders {
		t.demographic("gender", k[0], k[1], n)
	}
	type pair struct{ birth, day int32 }
	ords := map[pair]int32{}
	var ask db.AgeBandsParams
	for k := range d.ages {
		pr := pair{k.birth, k.day}
		if _, ok := ords[pr]; ok {
			continue
		}
		ords[pr] = int32(len(ask.Ords))
		ask.Ords = append(ask.Ords, int32(len(ask.Ords)))
		ask.BirthDates = append(ask.BirthDates, pgtype.Date{Time: dayTime(k.birth), Valid: true})
		ask.Days = append(ask.Days, pgtype.Date{Time: dayTime(k.day), Valid: true})
	}
	if len(ask.Ords) > 0 {
		rows, err := q.AgeBands(ctx, ask)
		if err != nil {
			return t.p, fmt.Errorf("ask age_band: %w", err)
		}
		if len(rows) != len(ask.Ords) {
			return t.p, fmt.Errorf("ask age_band: %d answers for %d questions", len(rows), len(ask.Ords))
		}
		bands := map[[2]string]int64{}
		for k, n := range d.ages {
			bands[[2]string{rows[ords[pair{k.birth, k.day}]].Band, k.candidate}] += n
		}
		for k, n := range bands {
			t.demographic("age_band", k[0], k[1], n)
		}
	}
	for k, n := range d.rejections {
		t.rejection(k[0], k[1], n)
	}
	for k, n := range d.stations {
		t.station(k[0], k[1], n)
	}
	return t.p, nil
}

// tallyRows gathers what WriteDirectTallies writes, for both replay paths.
type tallyRows struct{ p db.WriteDirectTalliesParams }

func (t *tallyRows) count(region, candidate, contest string, minute time.Time, n int64) {
	t.p.Regions = append(t.p.Regions, region)
	t.p.CandidateIDs = append(t.p.CandidateIDs, candidate)
	t.p.ContestIDs = append(t.p.ContestIDs, contest)
	t.p.Minutes = append(t.p.Minutes, minute)
	t.p.Counts = append(t.p.Counts, n)
}

func (t *tallyRows) demographic(dimension, bucket, candidate string, n int64) {
	t.p.Dimensions = append(t.p.Dimensions, dimension)
	t.p.Buckets = append(t.p.Buckets, bucket)
	t.p.DemographicCandidateIDs = append(t.p.DemographicCandidateIDs, candidate)
	t.p.DemographicCounts = append(t.p.DemographicCounts, n)
}

func (t *tallyRows) rejection(contest, reason string, n int64) {
	t.p.RejectionContestIDs = append(t.p.RejectionContestIDs, contest)
	t.p.Reasons = append(t.p.Reasons, reason)
	t.p.RejectionCounts = append(t.p.RejectionCounts, n)
}

func (t *tallyRows) station(station, outcome string, n int64) {
	t.p.StationIDs = append(t.p.StationIDs, station)
	t.p.Outcomes = append(t.p.Outcomes, outcome)
	t.p.StationCounts = append(t.p.StationCounts, n)
}

// stagedTallies reads what WriteDirectTallies writes from a fresh
// projection's ballots and rejections: the staged path's counts, rolled up
// by the same statement as the direct path's.
func stagedTallies(ctx context.Context, q *db.Queries) (db.WriteDirectTalliesParams, error) {
	var t tallyRows
	groups, err := q.BallotGroups(ctx)
	if err != nil {
		return t.p, fmt.Errorf("group the ballots: %w", err)
	}
	for _, g := range groups {
		t.count(g.Region, g.CandidateID, g.ContestID, g.Minute, g.N)
	}
	breakdowns, err := q.BallotBreakdowns(ctx)
	if err != nil {
		return t.p, fmt.Errorf("break the ballots down: %w", err)
	}
	for _, b := range breakdowns {
		t.demographic(b.Dimension, b.Bucket, b.CandidateID, b.N)
	}
	rejections, err := q.RejectionCounts(ctx)
	if err != nil {
		return t.p, fmt.Errorf("count rejections: %w", err)
	}
	for _, r := range rejections {
		t.rejection(r.ContestID, r.Reason, r.N)
	}
	stations, err := q.StationCounts(ctx)
	if err != nil {
		return t.p, fmt.Errorf("count stations: %w", err)
	}
	for _, s := range stations {
		t.station(s.StationID, s.Outcome, s.N)
	}
	return t.p, nil
}

// unixDay is t's date in UTC as days since 1970-01-01.
func unixDay(t time.Time) int32 {
	s := t.Unix()
	day := s / 86400
	if s%86400 < 0 {
		day--
	}
	return int32(day)
}

func dayTime(day int32) time.Time { return time.Unix(int64(day)*86400, 0).UTC() }
