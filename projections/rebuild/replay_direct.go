package rebuild

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
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
	"github.com/votewatch/votewatch/projections/write"
)

// decodedRecord is a votes-topic record after decoding: a control event (a
// schedule, a station's close marker), a vote, or an error that makes it a
// dead letter.
type decodedRecord struct {
	rec     projections.LogRecord
	control any
	vote    domain.Vote
	id      uuid.UUID
	err     error
}

// directChunk is how many records the load's stages pass on at a time.
const directChunk = 8192

// loadVotes is the replay's one way of deciding the votes of a fresh
// projection, whose register is complete (registrations are replayed
// first): it reads the votes topic, decodes on every core, decides each
// vote with domain.Decide on a domain.Ledger holding the register and the
// decisions in memory (the same decider live runs on facts loaded per
// batch), and COPYs the ballots, rejections, held votes and misrouted
// positions straight into their tables, with the ballots' key and index
// built after the load. The tallies are grouped in Go as the votes are
// decided and written once at the end, by the statement live writes a
// batch's with. Everything is one transaction, except the schedules and
// dead letters recorded through store in their own.
//
// Three stages overlap, passing chunks of directChunk records: reading and
// decoding (every core), deciding (one goroutine, in log order per
// partition) and COPY (the database's one backend).
//
// voters are the voters the registrations registered, when the replay kept
// them: if they are the whole register (as many as it counts), the ledger
// takes them instead of reading the register back.
func (r *Rebuilder) loadVotes(ctx context.Context, pool *pgxpool.Pool, store *write.Store, voters map[string]domain.Voter, from, to map[int32]int64, progress func(int)) (int64, error) {
	started := time.Now()
	ledger, err := loadLedger(ctx, db.New(pool), voters)
	if err != nil {
		return 0, err
	}
	ledger.Partitions = len(to)
	registered := time.Since(started)

	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin the votes' load: %w", err)
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
		waitIn  time.Duration // the decider waiting for decoded votes
		waitOut time.Duration // the decider waiting for COPY
	)
	d := &replayDecider{ledger: ledger, store: store, tallies: write.NewTallyGroups(), next: map[int32]int64{}, last: map[int32]time.Time{}}
	decodedChunks := make(chan []decodedRecord, 4)
	copies := make(chan replayRows, 2)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(decodedChunks)
		return r.events.ReadRange(gctx, domain.TopicVotes, from, to, func(recs []projections.LogRecord) error {
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
		defer close(copies)
		for {
			t := time.Now()
			recs, ok := <-decodedChunks
			waitIn += time.Since(t)
			if !ok {
				return nil
			}
			out, err := d.decide(gctx, recs)
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
			if len(c.misrouted) > 0 {
				if _, err := q.CopyMisroutedVotes(gctx, c.misrouted); err != nil {
					return fmt.Errorf("copy misrouted votes: %w", err)
				}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return n, fmt.Errorf("replay votes: %w", err)
	}
	loaded := time.Now()
	r.log.Debug("votes' load", "register", registered, "decoding", decode, "decider waiting for votes", waitIn, "decider waiting for COPY", waitOut)

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
	if !d.tallies.Empty() {
		if err := q.AddTallies(ctx, d.tallies.Params(0)); err != nil {
			return n, fmt.Errorf("write tallies: %w", err)
		}
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
		return n, fmt.Errorf("commit the votes' load: %w", err)
	}
	r.log.Info("bulk votes", "votes", n, "load", loaded.Sub(started), "key", keyed.Sub(loaded), "tallies", time.Since(keyed))
	return n, nil
}

// loadLedger reads the register of a freshly replayed projection into a
// ledger, with whether registration is closed. kept are the voters the
// replay saw registered; the register's voters are read only if they are
// not all of them (every registered voter is counted in regions, which
// GetTotals sums).
func loadLedger(ctx context.Context, q *db.Queries, kept map[string]domain.Voter) (*domain.Ledger, error) {
	l := domain.NewLedger()
	totals, err := q.GetTotals(ctx)
	if err != nil {
		return nil, fmt.Errorf("count the register's voters: %w", err)
	}
	if int64(len(kept)) == totals.RegisteredVoters {
		l.Voters = kept
	} else {
		voters, err := q.ListRegisterVoters(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the register's voters: %w", err)
		}
		for _, v := range voters {
			l.Voters[v.VoterID] = domain.UnmarshalVoterFromDatabase(v.VoterID, v.Gender, v.BirthDate.Time, v.Region)
		}
	}
	candidates, err := q.ListRegisterCandidates(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the register's candidates: %w", err)
	}
	for _, c := range candidates {
		l.Candidates[c.CandidateID] = domain.UnmarshalCandidateFromDatabase(c.CandidateID, c.ContestID)
	}
	contests, err := q.ListRegisterContests(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the register's contests: %w", err)
	}
	for _, c := range contests {
		l.Contests[c.ContestID] = domain.UnmarshalContestFromDatabase(c.ContestID, c.Name, c.Kind, c.Regions)
	}
	if l.Closed, err = q.RegistrationClosed(ctx); err != nil {
		return nil, fmt.Errorf("registration closed: %w", err)
	}
	return l, nil
}

// decodeVoteRecords decodes recs on every core into out, in order.
func decodeVoteRecords(opener *domain.Opener, recs []projections.LogRecord, out []decodedRecord) []decodedRecord {
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

func decodeVoteRecord(opener *domain.Opener, rec projections.LogRecord) decodedRecord {
	d := decodedRecord{rec: rec}
	if c, ok, err := domain.DecodeVotesControl(rec.Value); ok {
		d.control, d.err = c, err
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

// replayDecider runs domain.Decide over a replay's votes, chunk by chunk,
// on its ledger, and turns the verdicts into rows to COPY and tallies.
type replayDecider struct {
	ledger  *domain.Ledger
	store   *write.Store
	tallies *write.TallyGroups
	// next and last are each partition's next offset and newest cast_at
	// among its votes, for the applied offsets.
	next         map[int32]int64
	last         map[int32]time.Time
	namesDefault bool
}

// replayRows is what a chunk's verdicts become: rows to COPY.
type replayRows struct {
	ballots    []db.CopyBallotsParams
	rejections []db.CopyRejectionsParams
	held       []db.CopyHeldVotesParams
	misrouted  []db.CopyMisroutedVotesParams
}

// decide decides recs in order and returns the rows to COPY. Schedules
// and dead letters are recorded through the store, as live records them.
func (d *replayDecider) decide(ctx context.Context, recs []decodedRecord) (out replayRows, err error) {
	entries := make([]domain.VoteEntry, 0, len(recs))
	ids := make([]uuid.UUID, 0, len(recs))
	// msgs are the votes' messages as the log holds them: a held vote
	// keeps its own (00040), its choice sealed when it came sealed.
	msgs := make([][]byte, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		pos := projections.Position{Topic: domain.TopicVotes, Partition: r.rec.Partition, Offset: r.rec.Offset, Time: r.rec.Time}
		switch {
		case r.err != nil:
			err = d.store.RecordDeadLetter(ctx, pos, r.err.Error(), r.rec.Value)
		case r.control != nil:
			// The ledger answers by position: a vote before the control
			// event in its partition does not see it.
			switch c := r.control.(type) {
			case domain.ElectionScheduled:
				d.ledger.AddSchedule(pos.Partition, pos.Offset, c)
			case domain.StationOpened:
				d.ledger.AddStationOpen(pos.Partition, pos.Offset, c)
			case domain.StationClosed:
				d.ledger.AddStationClose(pos.Partition, pos.Offset, c)
			}
			err = d.store.RecordVotesControl(ctx, pos, r.control)
		default:
			entries = append(entries, domain.VoteEntry{Vote: r.vote, Partition: pos.Partition, Offset: pos.Offset, Logged: pos.Time})
			ids = append(ids, r.id)
			msgs = append(msgs, r.rec.Value)
			d.next[pos.Partition] = max(d.next[pos.Partition], pos.Offset+1)
			if r.vote.CastAt().After(d.last[pos.Partition]) {
				d.last[pos.Partition] = r.vote.CastAt()
			}
		}
		if err != nil {
			return replayRows{}, err
		}
	}
	verdicts := domain.Decide(entries, d.ledger)
	d.ledger.Record(entries, verdicts)
	out.ballots = make([]db.CopyBallotsParams, 0, len(entries))
	now := time.Now()
	for i, v := range verdicts {
		e := entries[i]
		vote := e.Vote
		d.tallies.Add(e, v)
		if v.Kind != domain.VerdictMisrouted && vote.ContestID() == domain.DefaultContest {
			d.namesDefault = true
		}
		var stationID, stationRegion pgtype.Text
		if s := vote.Station(); s.ID() != "" {
			stationID = pgtype.Text{String: s.ID(), Valid: true}
			stationRegion = pgtype.Text{String: s.Region().String(), Valid: true}
		}
		id := pgtype.UUID{Bytes: ids[i], Valid: true}
		switch v.Kind {
		case domain.VerdictCounted:
			out.ballots = append(out.ballots, db.CopyBallotsParams{VoterID: vote.VoterID(), VoteID: id,
				Region: v.Voter.Region().String(), CastAt: vote.CastAt(), StationID: stationID, ContestID: vote.ContestID()})
		case domain.VerdictRejected:
			at := e.Logged
			if at.IsZero() {
				at = now
			}
			out.rejections = append(out.rejections, db.CopyRejectionsParams{VoteID: id, Reason: v.Reason.String(), VoterID: vote.VoterID(),
				CastAt: vote.CastAt(), StationID: stationID, ContestID: vote.ContestID(), RecordedAt: at})
		case domain.VerdictHeld:
			out.held = append(out.held, db.CopyHeldVotesParams{VoteID: id, VoterID: vote.VoterID(), Message: msgs[i], CastAt: vote.CastAt(),
				Partition: e.Partition, Offset: e.Offset, StationID: stationID, StationRegion: stationRegion, ContestID: vote.ContestID(), LoggedAt: dbutil.KnownTime(e.Logged)})
		case domain.VerdictMisrouted:
			out.misrouted = append(out.misrouted, db.CopyMisroutedVotesParams{Partition: e.Partition, Offset: e.Offset})
		}
	}
	return out, nil
}
