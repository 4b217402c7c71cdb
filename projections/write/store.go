package write

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
)

// Store applies events to the projection tables. It is safe for concurrent
// use; each transaction writes the tallies in a stripe of its own (00019),
// so concurrent batches do not wait on each other's tally rows, and one
// that lost a deadlock or a serialization race anyway is retried.
// Registrations and votes never interleave: a registration holds the
// schema's registration lock exclusively, a vote batch holds it shared, so
// a vote is always decided against a register that cannot change under it.
type Store struct {
	pool *pgxpool.Pool
	// live stores write the projection readers see, and so hold the swap
	// lock shared in each transaction; a replay's store does not.
	live bool
	// stripes leases each transaction the tally stripe it writes.
	stripes *stripePool
	// votePartitions is the votes topic's partition count, by which rule
	// 0 checks a vote's partition (0: unknown, unchecked).
	votePartitions atomic.Int32
	// opener opens the sealed choices of held votes when they are decided
	// again (their messages are stored sealed, 00040).
	opener *domain.Opener
	// registered, when set (a replay's store), is handed the voters each
	// committed ApplyVoters registered, so the replay need not read the
	// register back before deciding the votes.
	registered func([]db.ApplyVotersRow)
}

// OpenWith has the store open held votes' sealed choices with o, the
// opener the votes were decoded with; it must be set before the store
// is used. Without it (nil) only clear held votes can be released.
func (s *Store) OpenWith(o *domain.Opener) { s.opener = o }

// SetVotePartitions tells the store how many partitions the votes topic
// has: a vote on another partition than murmur2 of its voter_id names is
// misrouted (domain.VotePartition). The count must not change during an
// election (Kafka's keyed order needs that too). Until it is set, no
// vote's partition is checked.
func (s *Store) SetVotePartitions(n int) { s.votePartitions.Store(int32(n)) }

// VotePartitions returns what SetVotePartitions set, or 0.
func (s *Store) VotePartitions() int { return int(s.votePartitions.Load()) }

// NewStore returns a Store writing the live projection through pool.
func NewStore(pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("new store: nil pool")
	}
	// Each process's Store counts its stripes from a random base, so that
	// projector processes sharing the work seldom share a stripe.
	return &Store{pool: pool, live: true, stripes: newStripePool(rand.IntN(maxStripes))}, nil
}

// NewRebuildStore returns a Store writing a projection being rebuilt
// behind pool, opening held votes' sealed choices with opener. No reader
// sees that schema before the swap, so it takes no swap lock, and it
// writes alone, so every tally goes to stripe 0.
func NewRebuildStore(pool *pgxpool.Pool, opener *domain.Opener) *Store {
	return &Store{pool: pool, opener: opener}
}

// maxTxAttempts bounds retries of a transaction that lost a deadlock or a
// serialization race; the work is idempotent so retrying is always safe.
const maxTxAttempts = 5

// inTx runs fn in a transaction, retrying on deadlock and serialization
// failures, with a stripe leased for all its attempts.
func (s *Store) inTx(ctx context.Context, fn func(q striped) error) error {
	stripe, err := s.stripes.lease(ctx)
	if err != nil {
		return fmt.Errorf("lease a tally stripe: %w", err)
	}
	defer s.stripes.release(stripe)
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if s.live {
				if err := dbutil.HoldSwapLock(ctx, tx); err != nil {
					return err
				}
			}
			return fn(striped{Queries: db.New(tx), stripe: stripe})
		})
		var pgErr *pgconn.PgError
		// 23505: a concurrent transaction stored a decision on the same
		// vote or ballot key first (WriteVoteDecisions); deciding again on
		// fresh facts sees it.
		if err == nil || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001" && pgErr.Code != "23505") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 5 * time.Millisecond):
		}
	}
	return err
}

// ApplyCandidates registers (or updates) the batch's candidates, refusing
// those that come after their partition's close marker, and decides the
// held votes that waited for them.
func (s *Store) ApplyCandidates(ctx context.Context, batch []projections.Envelope[domain.CandidateRegistered]) (RegistrationResult, error) {
	p := db.ApplyCandidatesParams{}
	for i, e := range batch {
		c := e.Event.Candidate
		p.Ords = append(p.Ords, int32(i))
		p.CandidateIDs = append(p.CandidateIDs, c.ID())
		p.Names = append(p.Names, c.Name())
		p.Parties = append(p.Parties, c.Party().String())
		p.Biographies = append(p.Biographies, c.Biography())
		p.Platforms = append(p.Platforms, c.Platform())
		p.PhotoURLs = append(p.PhotoURLs, c.PhotoURL())
		p.Partitions = append(p.Partitions, e.Position.Partition)
		p.Offsets = append(p.Offsets, e.Position.Offset)
		p.ContestIDs = append(p.ContestIDs, c.ContestID())
	}
	var res RegistrationResult
	err := s.inRegistrationTx(ctx, func(q striped) error {
		registered, err := q.ApplyCandidates(ctx, p)
		if err != nil {
			return err
		}
		res.Registered = int64(len(registered))
		if res.Released, err = s.release(ctx, q, db.TakeHeldVotesParams{EveryVoter: true, VoterIDs: []string{}, ContestIDs: []string{}}); err != nil {
			return err
		}
		return advance(ctx, q, positions(batch))
	})
	if err != nil {
		return RegistrationResult{}, fmt.Errorf("apply %d candidates: %w", len(batch), err)
	}
	return res, nil
}

// ApplyContests registers the batch's contests (the first event for a
// contest wins), refusing those after their partition's close marker, and
// decides the held votes that waited for them.
func (s *Store) ApplyContests(ctx context.Context, batch []projections.Envelope[domain.ContestRegistered]) (RegistrationResult, error) {
	p := db.ApplyContestsParams{}
	for i, e := range batch {
		c := e.Event.Contest
		names := make([]string, 0, len(c.Regions()))
		for _, r := range c.Regions() {
			names = append(names, r.String())
		}
		p.Ords = append(p.Ords, int32(i))
		p.ContestIDs = append(p.ContestIDs, c.ID())
		p.Names = append(p.Names, c.Name())
		p.Kinds = append(p.Kinds, c.Kind().String())
		// One text per row (sqlc passes no arrays of arrays): regions
		// joined by the unit separator, which no region name holds.
		p.Regions = append(p.Regions, strings.Join(names, "\x1f"))
		p.Partitions = append(p.Partitions, e.Position.Partition)
		p.Offsets = append(p.Offsets, e.Position.Offset)
	}
	var res RegistrationResult
	err := s.inRegistrationTx(ctx, func(q striped) error {
		registered, err := q.ApplyContests(ctx, p)
		if err != nil {
			return err
		}
		res.Registered = int64(len(registered))
		if res.Released, err = s.release(ctx, q, db.TakeHeldVotesParams{ContestIDs: registered, VoterIDs: []string{}}); err != nil {
			return err
		}
		return advance(ctx, q, positions(batch))
	})
	if err != nil {
		return RegistrationResult{}, fmt.Errorf("apply %d contests: %w", len(batch), err)
	}
	return res, nil
}

// OnRegistered has fn handed the voters each committed ApplyVoters
// registered (a replay keeps them for its ledger); nil stops it.
func (s *Store) OnRegistered(fn func([]db.ApplyVotersRow)) { s.registered = fn }

// ApplyStationReports records polling stations' reports (registered,
// closed): reporting progress. They decide no vote.
func (s *Store) ApplyStationReports(ctx context.Context, batch []projections.Envelope[domain.StationReported]) error {
	p := db.ApplyStationReportsParams{}
	for i, e := range batch {
		r := e.Event
		p.Ords = append(p.Ords, int32(i))
		p.StationIDs = append(p.StationIDs, r.Station().ID())
		p.Regions = append(p.Regions, r.Station().Region().String())
		p.Closed = append(p.Closed, r.Closed())
		p.ReportedAts = append(p.ReportedAts, r.ReportedAt())
		p.Ballots = append(p.Ballots, reportedBallots(r))
	}
	err := s.inTx(ctx, func(q striped) error {
		if err := q.ApplyStationReports(ctx, p); err != nil {
			return err
		}
		return advance(ctx, q, positions(batch))
	})
	if err != nil {
		return fmt.Errorf("apply %d station reports: %w", len(batch), err)
	}
	return nil
}

// RecordOperatorActions records operator actions read from the audit
// topic, each once at its log position.
func (s *Store) RecordOperatorActions(ctx context.Context, batch []projections.Envelope[domain.OperatorActed]) error {
	p := db.RecordOperatorActionsParams{}
	for _, e := range batch {
		a := e.Event
		p.Partitions = append(p.Partitions, e.Position.Partition)
		p.Offsets = append(p.Offsets, e.Position.Offset)
		p.Actions = append(p.Actions, a.Action())
		p.Whos = append(p.Whos, a.Who())
		p.Hosts = append(p.Hosts, a.Host())
		p.Ats = append(p.Ats, a.At())
		p.Details = append(p.Details, a.Detail())
		p.Results = append(p.Results, a.Result())
	}
	err := s.inTx(ctx, func(q striped) error {
		if err := q.RecordOperatorActions(ctx, p); err != nil {
			return err
		}
		return advance(ctx, q, positions(batch))
	})
	if err != nil {
		return fmt.Errorf("record %d operator actions: %w", len(batch), err)
	}
	return nil
}

// RegistrationResult tells what a registration (or close marker) did.
type RegistrationResult struct {
	// Registered counts new (for candidates: new or corrected)
	// registrations.
	Registered int64
	// Released is what became of the held votes it made decidable.
	Released VoteBatchResult
}

// ApplyVoters registers the batch's voters, refusing those that come after
// their partition's close marker, decides the held votes that waited for
// them, and returns how many voters were new.
func (s *Store) ApplyVoters(ctx context.Context, batch []projections.Envelope[domain.VoterRegistered]) (RegistrationResult, error) {
	p := db.ApplyVotersParams{}
	for i, e := range batch {
		v := e.Event.Voter
		p.Ords = append(p.Ords, int32(i))
		p.VoterIDs = append(p.VoterIDs, v.ID())
		p.Genders = append(p.Genders, v.Gender())
		p.BirthDates = append(p.BirthDates, pgtype.Date{Time: v.BirthDate(), Valid: true})
		p.Regions = append(p.Regions, v.Region().String())
		p.Cities = append(p.Cities, v.City())
		p.RegisteredAts = append(p.RegisteredAts, v.RegisteredAt())
		p.Partitions = append(p.Partitions, e.Position.Partition)
		p.Offsets = append(p.Offsets, e.Position.Offset)
	}
	var res RegistrationResult
	var voters []db.ApplyVotersRow
	err := s.inRegistrationTx(ctx, func(q striped) error {
		var err error
		if voters, err = q.ApplyVoters(ctx, p); err != nil {
			return err
		}
		ids := make([]string, len(voters))
		for i, v := range voters {
			ids[i] = v.VoterID
		}
		res.Registered = int64(len(ids))
		if res.Released, err = s.release(ctx, q, db.TakeHeldVotesParams{VoterIDs: ids, ContestIDs: []string{}}); err != nil {
			return err
		}
		return advance(ctx, q, positions(batch))
	})
	if err != nil {
		return RegistrationResult{}, fmt.Errorf("apply %d voters: %w", len(batch), err)
	}
	if s.registered != nil {
		s.registered(voters)
	}
	return res, nil
}

// CloseRegistration records a close marker read at pos (a partition of the
// candidates or voters topic). When it is the last marker registration
// waited for, every held vote is decided.
//
// topicPartitions is the topic's partition count: a marker that declares
// another is ignored (domain.Count), so registration can neither close
// early nor reopen on a marker that miscounts.
func (s *Store) CloseRegistration(ctx context.Context, pos projections.Position, e domain.RegistrationClosed, topicPartitions int) (RegistrationResult, error) {
	var res RegistrationResult
	err := s.inRegistrationTx(ctx, func(q striped) error {
		if e.Partitions() != topicPartitions {
			return advance(ctx, q, []projections.Position{pos})
		}
		if err := q.CloseRegistration(ctx, db.CloseRegistrationParams{
			Topic: pos.Topic, Partition: pos.Partition, MessageOffset: pos.Offset,
			Partitions: int32(e.Partitions()), ClosedAt: e.ClosedAt(),
		}); err != nil {
			return err
		}
		var err error
		if res.Released, err = s.release(ctx, q, db.TakeHeldVotesParams{EveryVoter: true, VoterIDs: []string{}, ContestIDs: []string{}}); err != nil {
			return err
		}
		return advance(ctx, q, []projections.Position{pos})
	})
	if err != nil {
		return RegistrationResult{}, fmt.Errorf("close registration on %s/%d: %w", pos.Topic, pos.Partition, err)
	}
	return res, nil
}

// inRegistrationTx runs fn in a transaction holding the registration lock
// exclusively.
func (s *Store) inRegistrationTx(ctx context.Context, fn func(q striped) error) error {
	return s.inTx(ctx, func(q striped) error {
		if err := q.LockRegistration(ctx); err != nil {
			return fmt.Errorf("lock registration: %w", err)
		}
		return fn(q)
	})
}

// release decides again, in log order, the held votes of the voters that
// what was just registered (or closed) concerns: it takes them out of
// held_votes and hands them to the decider, which holds again those that
// must still wait.
func (s *Store) release(ctx context.Context, q striped, p db.TakeHeldVotesParams) (VoteBatchResult, error) {
	if !p.EveryVoter && len(p.VoterIDs) == 0 && len(p.ContestIDs) == 0 {
		return VoteBatchResult{}, nil
	}
	rows, err := q.TakeHeldVotes(ctx, p)
	if err != nil {
		return VoteBatchResult{}, fmt.Errorf("take held votes: %w", err)
	}
	if len(rows) == 0 {
		return VoteBatchResult{}, nil
	}
	slices.SortFunc(rows, func(a, b db.TakeHeldVotesRow) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	entries := make([]domain.VoteEntry, 0, len(rows))
	for _, r := range rows {
		// The held vote's message, opened as the projector opened it when
		// it was read: the decision equals the replay's, which decides
		// the log's message. A clear one passed the opener's checks when
		// it was read (or was held before 00040 stored messages), so only
		// a sealed one goes through the opener again.
		vc, err := domain.DecodeVoteCast(r.Message)
		if _, sealed := vc.Vote.Sealed(); err == nil && sealed {
			vc, err = s.opener.DecodeVoteCast(r.Message)
		}
		if err != nil {
			return VoteBatchResult{}, fmt.Errorf("held vote %s: %w", r.VoteID, err)
		}
		entries = append(entries, domain.VoteEntry{Vote: vc.Vote, Partition: r.Partition, Offset: r.Offset, Logged: dbutil.TimeOrZero(r.LoggedAt), Released: true})
	}
	return decideAndWrite(ctx, q, entries, s.VotePartitions())
}

// VoteBatchResult tells what became of a batch of votes.
type VoteBatchResult struct {
	// Accepted counts votes that became ballots now (not redeliveries).
	Accepted int64
	// Held counts votes newly held: their voter or candidate is not
	// registered while registration is open.
	Held int64
	// Rejected counts the batch's votes rejected now, by reason.
	Rejected map[domain.RejectionReason]int
	// Misrouted counts votes refused for their partition (rule 0).
	Misrouted int64
}

// ApplyVotes decides a batch of votes in one transaction with
// domain.Decide, on the facts loaded for the batch's keys: new ballots are
// folded into every tally, rejections are recorded once per vote_id, votes
// that must wait for registration are held, misrouted votes are refused by
// position, and the partitions' applied offsets advance past every vote.
// Votes of one partition must be in offset order.
func (s *Store) ApplyVotes(ctx context.Context, batch []projections.Envelope[domain.VoteCast]) (VoteBatchResult, error) {
	var res VoteBatchResult
	err := s.inTx(ctx, func(q striped) error {
		if err := q.ShareRegistration(ctx); err != nil {
			return fmt.Errorf("share registration lock: %w", err)
		}
		entries := make([]domain.VoteEntry, 0, len(batch))
		done := make([]projections.Position, 0, len(batch))
		for _, e := range batch {
			v := e.Event.Vote
			entries = append(entries, domain.VoteEntry{Vote: v, Partition: e.Position.Partition, Offset: e.Position.Offset, Logged: e.Position.Time})
			// Staleness follows the newest vote; a cast_at later than its
			// log time (clock drift, or an implausible date) must not make
			// the projection look fresher than it is.
			pos := e.Position
			if pos.Time.IsZero() || v.CastAt().Before(pos.Time) {
				pos.Time = v.CastAt()
			}
			done = append(done, pos)
		}
		var err error
		if res, err = decideAndWrite(ctx, q, entries, s.VotePartitions()); err != nil {
			return err
		}
		return advance(ctx, q, done)
	})
	if err != nil {
		return VoteBatchResult{}, fmt.Errorf("apply %d votes: %w", len(batch), err)
	}
	return res, nil
}

// RecordSchedule records a schedule read at pos (a votes partition): the
// votes after it in that partition are checked against it.
func (s *Store) RecordSchedule(ctx context.Context, pos projections.Position, e domain.ElectionScheduled) error {
	err := s.inTx(ctx, func(q striped) error {
		if err := q.RecordSchedule(ctx, db.RecordScheduleParams{
			Partition: pos.Partition, MessageOffset: pos.Offset,
			PollsOpen:  e.PollsOpen(),
			PollsClose: e.PollsClose(),
		}); err != nil {
			return err
		}
		return advance(ctx, q, []projections.Position{pos})
	})
	if err != nil {
		return fmt.Errorf("record schedule at %s/%d@%d: %w", pos.Topic, pos.Partition, pos.Offset, err)
	}
	return nil
}

// RecordStationOpen records an opening read at pos (a votes partition):
// its stations' votes after it in that partition are decided (rule 7).
func (s *Store) RecordStationOpen(ctx context.Context, pos projections.Position, e domain.StationOpened) error {
	p := db.RecordStationOpenParams{Partition: pos.Partition, MessageOffset: pos.Offset, OpenedAt: e.OpenedAt()}
	for _, st := range e.Stations() {
		p.StationIDs = append(p.StationIDs, st.ID())
		p.Regions = append(p.Regions, st.Region().String())
	}
	err := s.inTx(ctx, func(q striped) error {
		if err := q.RecordStationOpen(ctx, p); err != nil {
			return err
		}
		return advance(ctx, q, []projections.Position{pos})
	})
	if err != nil {
		return fmt.Errorf("record the opening of %d stations at %s/%d@%d: %w", len(p.StationIDs), pos.Topic, pos.Partition, pos.Offset, err)
	}
	return nil
}

// RecordStationClose records a close marker read at pos (a votes
// partition): its stations' votes after it in that partition are
// after_station_close.
func (s *Store) RecordStationClose(ctx context.Context, pos projections.Position, e domain.StationClosed) error {
	err := s.inTx(ctx, func(q striped) error {
		if err := q.RecordStationClose(ctx, db.RecordStationCloseParams{
			StationIDs: e.StationIDs(), Partition: pos.Partition, MessageOffset: pos.Offset, ClosedAt: e.ClosedAt(),
		}); err != nil {
			return err
		}
		return advance(ctx, q, []projections.Position{pos})
	})
	if err != nil {
		return fmt.Errorf("record the close of stations %v at %s/%d@%d: %w", e.StationIDs(), pos.Topic, pos.Partition, pos.Offset, err)
	}
	return nil
}

// RecordVotesControl records a control event of the votes topic
// (domain.DecodeVotesControl) read at pos.
func (s *Store) RecordVotesControl(ctx context.Context, pos projections.Position, control any) error {
	// A control event is not a vote: the projection's staleness follows
	// the newest vote, so an intake opening its stations at start must not
	// make an idle projection of old votes look fresh.
	pos.Time = time.Time{}
	switch c := control.(type) {
	case domain.ElectionScheduled:
		return s.RecordSchedule(ctx, pos, c)
	case domain.StationOpened:
		return s.RecordStationOpen(ctx, pos, c)
	case domain.StationClosed:
		return s.RecordStationClose(ctx, pos, c)
	}
	return fmt.Errorf("record %T at %s/%d@%d: not a control event of the votes topic", control, pos.Topic, pos.Partition, pos.Offset)
}

// RecordDeadLetter notes a message that can never be applied and moves its
// partition's applied offset past it.
func (s *Store) RecordDeadLetter(ctx context.Context, pos projections.Position, reason string, payload []byte) error {
	err := s.inTx(ctx, func(q striped) error {
		if err := q.RecordDeadLetter(ctx, db.RecordDeadLetterParams{
			Topic: pos.Topic, Partition: pos.Partition, MessageOffset: pos.Offset, Reason: reason, Payload: payload,
		}); err != nil {
			return err
		}
		return advance(ctx, q, []projections.Position{pos})
	})
	if err != nil {
		return fmt.Errorf("record dead letter %s/%d@%d: %w", pos.Topic, pos.Partition, pos.Offset, err)
	}
	return nil
}

func positions[E any](batch []projections.Envelope[E]) []projections.Position {
	out := make([]projections.Position, len(batch))
	for i, e := range batch {
		out[i] = e.Position
	}
	return out
}

// advance records, per topic and partition, the offset after the highest
// position given.
func advance(ctx context.Context, q striped, done []projections.Position) error {
	type tp struct {
		topic     string
		partition int32
	}
	next := map[tp]int64{}
	latest := map[tp]time.Time{}
	for _, p := range done {
		k := tp{p.Topic, p.Partition}
		if cur, ok := next[k]; !ok || p.Offset+1 > cur {
			next[k] = p.Offset + 1
		}
		if p.Time.After(latest[k]) {
			latest[k] = p.Time
		}
	}
	byTopic := map[string]*db.AdvanceOffsetsParams{}
	for k, off := range next {
		p := byTopic[k.topic]
		if p == nil {
			p = &db.AdvanceOffsetsParams{Topic: k.topic, Stripe: q.stripe}
			byTopic[k.topic] = p
		}
		p.Partitions = append(p.Partitions, k.partition)
		p.NextOffsets = append(p.NextOffsets, off)
		p.LastEventAts = append(p.LastEventAts, latest[k])
	}
	for topic, p := range byTopic {
		if err := q.AdvanceOffsets(ctx, *p); err != nil {
			return fmt.Errorf("advance offsets of %s: %w", topic, err)
		}
	}
	return nil
}

// reportedBallots is a report's ballots as ApplyStationReports takes
// them: -1 when it carries none.
func reportedBallots(r domain.StationReported) int64 {
	if n, ok := r.Ballots(); ok {
		return n
	}
	return -1
}
