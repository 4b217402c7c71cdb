package projections

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// decodedRecord is a votes-topic record after decoding: a schedule, a vote,
// or an error that makes it a dead letter.
type decodedRecord struct {
	rec        LogRecord
	isSchedule bool
	schedule   domain.ElectionScheduled
	vote       domain.Vote
	id         uuid.UUID
	err        error
}

// directVotes is the replay's fast path for a fresh projection, whose
// register is complete (registrations are replayed first): it reads the
// votes topic, decodes on every core, decides each vote in Go in log order
// from vote_verdict's answers, and COPYs the ballots, rejections and held
// votes straight into their tables, with the ballots' key and index built
// after the load. Only the tallies are folded in SQL. Everything is one
// transaction: when it returns errMixedPartitions nothing of it remains.
func (r *Rebuilder) directVotes(ctx context.Context, pool *pgxpool.Pool, store *Store, closed bool, from, to map[int32]int64, progress func(int)) (int64, error) {
	started := time.Now()
	registered, err := db.New(pool).ListVoterRegions(ctx)
	if err != nil {
		return 0, fmt.Errorf("list voters: %w", err)
	}
	d := &directDecider{
		pool:      pool,
		closed:    closed,
		blocked:   map[domain.BallotKey]bool{},
		voters:    make(map[string]string, len(registered)),
		verdicts:  map[verdictKey][2]string{},
		votePart:  map[uuid.UUID]int32{},
		voterPart: map[string]int32{},
		counted:   map[domain.BallotKey]bool{},
		schedules: map[int32]*domain.ElectionScheduled{},
		next:      map[int32]int64{},
		last:      map[int32]time.Time{},
	}
	for _, v := range registered {
		d.voters[v.VoterID] = v.Region
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin direct load: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// A fresh projection's ballots are empty: loading them without their
	// key and index, then building both once, costs far less than
	// maintaining them row by row. Compiling the tallies' fold (JIT) costs
	// more than it saves.
	if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL work_mem = '256MB'; SET LOCAL jit = off;
		ALTER TABLE ballots DROP CONSTRAINT ballots_pkey; DROP INDEX ballots_vote_id`); err != nil {
		return 0, fmt.Errorf("drop the ballots' key: %w", err)
	}

	type copyChunk struct {
		table string
		rows  [][]any
	}
	columns := map[string][]string{
		"ballots":    {"voter_id", "vote_id", "candidate_id", "region", "cast_at", "station_id", "contest_id"},
		"rejections": {"vote_id", "reason", "voter_id", "cast_at", "station_id", "contest_id", "recorded_at"},
		"held_votes": {"vote_id", "voter_id", "candidate_id", "cast_at", "partition", "offset", "station_id", "station_region", "contest_id", "logged_at"},
	}
	chunks := make(chan copyChunk, 2)
	var n int64
	g, gctx := errgroup.WithContext(ctx)
	// Deciding overlaps with COPY: this goroutine writes what the other
	// decided.
	g.Go(func() error {
		for c := range chunks {
			if _, err := tx.CopyFrom(gctx, pgx.Identifier{c.table}, columns[c.table], pgx.CopyFromRows(c.rows)); err != nil {
				return fmt.Errorf("copy %s: %w", c.table, err)
			}
		}
		return nil
	})
	g.Go(func() error {
		defer close(chunks)
		send := func(table string, rows [][]any) error {
			if len(rows) == 0 {
				return nil
			}
			select {
			case chunks <- copyChunk{table: table, rows: rows}:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		decoded := make([]decodedRecord, 0, 8192)
		return r.events.ReadRange(gctx, domain.TopicVotes, from, to, func(recs []LogRecord) error {
			n += int64(len(recs))
			defer progress(len(recs))
			decoded = decodeVoteRecords(recs, decoded[:0])
			if err := d.resolve(gctx, decoded); err != nil {
				return err
			}
			out, err := d.decide(gctx, store, decoded)
			if err != nil {
				return err
			}
			if err := send("ballots", out.ballots); err != nil {
				return err
			}
			if err := send("held_votes", out.held); err != nil {
				return err
			}
			return send("rejections", out.rejections)
		})
	})
	if err := g.Wait(); err != nil {
		if errors.Is(err, errMixedPartitions) {
			return n, err
		}
		return n, fmt.Errorf("replay votes: %w", err)
	}
	loaded := time.Now()

	q := db.New(tx)
	if d.namesDefault {
		if err := q.EnsureDefaultContest(ctx); err != nil {
			return n, fmt.Errorf("default contest: %w", err)
		}
	}
	// Statistics too: the tallies' fold joins the just-loaded ballots with
	// the just-registered voters, and without them the planner guesses.
	if _, err := tx.Exec(ctx, `ALTER TABLE ballots ADD PRIMARY KEY (voter_id, contest_id);
		CREATE INDEX ballots_vote_id ON ballots (vote_id); ANALYZE ballots; ANALYZE voters`); err != nil {
		return n, fmt.Errorf("build the ballots' key: %w", err)
	}
	keyed := time.Now()
	if _, err := q.FoldBallotTallies(ctx); err != nil {
		return n, fmt.Errorf("fold tallies: %w", err)
	}
	if err := q.CountRejections(ctx); err != nil {
		return n, fmt.Errorf("count rejections: %w", err)
	}
	if err := q.CountStations(ctx); err != nil {
		return n, fmt.Errorf("count stations: %w", err)
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
func decodeVoteRecords(recs []LogRecord, out []decodedRecord) []decodedRecord {
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
				out[i] = decodeVoteRecord(recs[i])
			}
		}()
	}
	wg.Wait()
	return out
}

func decodeVoteRecord(rec LogRecord) decodedRecord {
	d := decodedRecord{rec: rec}
	if s, ok, err := domain.DecodeElectionScheduled(rec.Value); ok {
		d.isSchedule, d.schedule, d.err = true, s, err
		return d
	}
	ev, err := domain.DecodeVoteCast(rec.Value)
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

// directDecider decides votes in log order, as domain.Count does, asking
// vote_verdict for each combination of register facts once.
type directDecider struct {
	pool   *pgxpool.Pool
	closed bool
	// voters is the register: each voter's region.
	voters   map[string]string
	verdicts map[verdictKey][2]string
	// votePart and voterPart tell on which partition a vote_id and a voter
	// were first seen; counted which voters have a ballot in a contest.
	votePart  map[uuid.UUID]int32
	voterPart map[string]int32
	counted   map[domain.BallotKey]bool
	// blocked tells which voters have a held vote in a contest: their
	// later votes there are held too.
	blocked map[domain.BallotKey]bool
	// schedules holds the latest schedule read on each partition.
	schedules map[int32]*domain.ElectionScheduled
	// next and last are each partition's next offset and newest cast_at
	// among its votes, for the applied offsets.
	next         map[int32]int64
	last         map[int32]time.Time
	namesDefault bool
}

func (d *directDecider) key(v domain.Vote) verdictKey {
	return verdictKey{contest: v.ContestID(), candidate: v.CandidateID(), voterRegion: d.voters[v.VoterID()], stationRegion: v.Station().Region().String()}
}

// resolve asks vote_verdict, in one statement, for the combinations in
// recs not asked before.
func (d *directDecider) resolve(ctx context.Context, recs []decodedRecord) error {
	p := db.VoteVerdictsParams{RegistrationClosed: d.closed}
	var keys []verdictKey
	asked := map[verdictKey]bool{}
	for _, r := range recs {
		if r.err != nil || r.isSchedule {
			continue
		}
		k := d.key(r.vote)
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
	ballots, rejections, held [][]any
}

// decide applies the rule to recs (resolved) in order and returns the rows
// to COPY. Schedules and dead letters are recorded through store, as the
// staged path records them.
func (d *directDecider) decide(ctx context.Context, store *Store, recs []decodedRecord) (out decided, err error) {
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
		d.next[pos.Partition] = max(d.next[pos.Partition], pos.Offset+1)
		if v.CastAt().After(d.last[pos.Partition]) {
			d.last[pos.Partition] = v.CastAt()
		}
		if v.ContestID() == domain.DefaultContest {
			d.namesDefault = true
		}
		if p, ok := d.voterPart[v.VoterID()]; !ok {
			d.voterPart[v.VoterID()] = pos.Partition
		} else if p != pos.Partition {
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

		var stationID, stationRegion *string
		if st := v.Station(); st.ID() != "" {
			id, region := st.ID(), st.Region().String()
			stationID, stationRegion = &id, &region
		}
		reject := func(reason string) {
			at := r.rec.Time
			if at.IsZero() {
				at = time.Now()
			}
			out.rejections = append(out.rejections, []any{r.id, reason, v.VoterID(), v.CastAt(), stationID, v.ContestID(), at})
		}
		if reason, rejected := domain.CheckCastTime(v.CastAt(), r.rec.Time, d.schedules[pos.Partition]); rejected {
			reject(reason.String())
			continue
		}
		ballot := domain.BallotKey{Voter: v.VoterID(), Contest: v.ContestID()}
		answers, ok := d.verdicts[d.key(v)]
		if !ok {
			return decided{}, fmt.Errorf("vote %s: no verdict asked", v.ID())
		}
		verdict := answers[0]
		if d.counted[ballot] {
			verdict = answers[1]
		}
		// A held vote holds every later vote of its voter in the contest,
		// so that the first vote still wins once they are released.
		if d.blocked[ballot] {
			verdict = "held"
		}
		switch verdict {
		case "counted":
			d.counted[ballot] = true
			out.ballots = append(out.ballots, []any{v.VoterID(), r.id, v.CandidateID(), d.voters[v.VoterID()], v.CastAt(), stationID, v.ContestID()})
		case "held":
			d.blocked[ballot] = true
			// A copy: recs is reused for the next batch before the COPY.
			var loggedAt *time.Time
			if at := r.rec.Time; !at.IsZero() {
				loggedAt = &at
			}
			out.held = append(out.held, []any{r.id, v.VoterID(), v.CandidateID(), v.CastAt(), pos.Partition, pos.Offset, stationID, stationRegion, v.ContestID(), loggedAt})
		default:
			reject(verdict)
		}
	}
	return out, nil
}
