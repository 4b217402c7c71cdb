// Package projections folds events into the read model (tallies, turnout,
// rejections) and reads it back. Every apply is idempotent: applying the
// same events again, in any batching, leaves the tables unchanged, so
// at-least-once delivery yields exactly-once effect.
package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/sql/db"
)

// ErrNotFound is returned when a requested region or candidate does not exist.
var ErrNotFound = errors.New("not found")

// ErrRegistrationPending is returned for a vote whose voter or candidate is
// not registered yet while registration events are still being projected.
// It is transient: retrying after registration catches up decides the vote.
var ErrRegistrationPending = errors.New("registration not yet projected")

// Position is where an event sits in the log.
type Position struct {
	Topic     string
	Partition int32
	Offset    int64
	// Time is when the event happened (the Kafka timestamp, or the vote's
	// cast_at); zero when unknown. It measures staleness.
	Time time.Time
}

// Envelope is an event with its position in the log.
type Envelope[E any] struct {
	Event    E
	Position Position
}

// HighWatermarksFunc returns, per partition, the offset after the last
// message currently in topic. The store uses it to decide whether a vote
// for an unknown voter is truly unknown or only not projected yet.
type HighWatermarksFunc func(ctx context.Context, topic string) (map[int32]int64, error)

// Store applies events to the projection tables. It is safe for concurrent
// use; concurrent batches lock tally rows in key order and a deadlocked
// batch is retried.
type Store struct {
	pool           *pgxpool.Pool
	highWatermarks HighWatermarksFunc
	// live stores write the projection readers see, and so hold the swap
	// lock shared in each transaction; a replay's store does not.
	live bool
}

// NewStore returns a Store writing the live projection through pool.
// highWatermarks reports the registration topics' ends (see
// HighWatermarksFunc).
func NewStore(pool *pgxpool.Pool, highWatermarks HighWatermarksFunc) (*Store, error) {
	if pool == nil {
		return nil, errors.New("new store: nil pool")
	}
	if highWatermarks == nil {
		return nil, errors.New("new store: nil high watermarks func")
	}
	return &Store{pool: pool, highWatermarks: highWatermarks, live: true}, nil
}

// maxTxAttempts bounds retries of a transaction that lost a deadlock or a
// serialization race; the work is idempotent so retrying is always safe.
const maxTxAttempts = 5

// inTx runs fn in a transaction, retrying on deadlock and serialization
// failures.
func (s *Store) inTx(ctx context.Context, fn func(q *db.Queries) error) error {
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if s.live {
				if err := holdSwapLock(ctx, tx); err != nil {
					return err
				}
			}
			return fn(db.New(tx))
		})
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
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

// ApplyCandidates registers (or updates) the batch's candidates.
func (s *Store) ApplyCandidates(ctx context.Context, batch []Envelope[domain.CandidateRegistered]) error {
	p := db.ApplyCandidatesParams{}
	for i, e := range batch {
		c := e.Event.Candidate
		p.Ords = append(p.Ords, int32(i))
		p.CandidateIds = append(p.CandidateIds, c.ID())
		p.Names = append(p.Names, c.Name())
		p.Parties = append(p.Parties, c.Party().String())
		p.Biographies = append(p.Biographies, c.Biography())
		p.Platforms = append(p.Platforms, c.Platform())
		p.PhotoUrls = append(p.PhotoUrls, c.PhotoURL())
	}
	err := s.inTx(ctx, func(q *db.Queries) error {
		if err := q.ApplyCandidates(ctx, p); err != nil {
			return err
		}
		return advance(ctx, q, positions(batch))
	})
	if err != nil {
		return fmt.Errorf("apply %d candidates: %w", len(batch), err)
	}
	return nil
}

// ApplyVoters registers the batch's voters and returns how many were new.
func (s *Store) ApplyVoters(ctx context.Context, batch []Envelope[domain.VoterRegistered]) (int64, error) {
	p := db.ApplyVotersParams{}
	for i, e := range batch {
		v := e.Event.Voter
		p.Ords = append(p.Ords, int32(i))
		p.VoterIds = append(p.VoterIds, v.ID())
		p.Genders = append(p.Genders, v.Gender())
		p.BirthDates = append(p.BirthDates, pgtype.Date{Time: v.BirthDate(), Valid: true})
		p.Regions = append(p.Regions, v.Region().String())
		p.Cities = append(p.Cities, v.City())
		p.RegisteredAts = append(p.RegisteredAts, pgtype.Timestamptz{Time: v.RegisteredAt(), Valid: true})
	}
	var registered int64
	err := s.inTx(ctx, func(q *db.Queries) error {
		n, err := q.ApplyVoters(ctx, p)
		if err != nil {
			return err
		}
		registered = n
		return advance(ctx, q, positions(batch))
	})
	if err != nil {
		return 0, fmt.Errorf("apply %d voters: %w", len(batch), err)
	}
	return registered, nil
}

// VoteBatchResult tells what became of a batch of votes.
type VoteBatchResult struct {
	// Accepted counts votes that became ballots now (not redeliveries).
	Accepted int64
	// Rejected counts the batch's rejected votes by reason, redeliveries of
	// earlier rejections included.
	Rejected map[domain.RejectionReason]int
	// Pending holds the indexes of votes that wait for registration
	// (ErrRegistrationPending); nothing about them was written.
	Pending []int
}

// ApplyVotes applies a batch of votes in one transaction: new ballots are
// folded into every tally, rejections are recorded once per vote_id, and the
// partitions' applied offsets advance. Votes whose voter or candidate is
// unknown while registration is still being projected are left out and
// reported in Pending; all others are decided.
func (s *Store) ApplyVotes(ctx context.Context, batch []Envelope[domain.VoteCast]) (VoteBatchResult, error) {
	apply := db.ApplyVotesParams{}
	for i, e := range batch {
		v := e.Event.Vote
		apply.Ords = append(apply.Ords, int32(i))
		apply.VoteIds = append(apply.VoteIds, v.ID())
		apply.VoterIds = append(apply.VoterIds, v.VoterID())
		apply.CandidateIds = append(apply.CandidateIds, v.CandidateID())
		apply.CastAts = append(apply.CastAts, pgtype.Timestamptz{Time: v.CastAt(), Valid: true})
	}
	classify := db.RecordRejectionsParams{
		Ords: apply.Ords, VoteIds: apply.VoteIds, VoterIds: apply.VoterIds,
		CandidateIds: apply.CandidateIds, CastAts: apply.CastAts,
	}

	var res VoteBatchResult
	err := s.inTx(ctx, func(q *db.Queries) error {
		res = VoteBatchResult{Rejected: map[domain.RejectionReason]int{}}
		accepted, err := q.ApplyVotes(ctx, apply)
		if err != nil {
			return fmt.Errorf("insert ballots: %w", err)
		}
		res.Accepted = accepted

		classify.RecordUnknown = false
		rows, err := q.RecordRejections(ctx, classify)
		if err != nil {
			return fmt.Errorf("record rejections: %w", err)
		}
		if hasUnknown(rows) {
			// Only now is the registration log consulted: a fresh look at
			// its end, taken after these votes were published, tells whether
			// every registration they could refer to is already applied.
			complete, err := s.registrationComplete(ctx, q)
			if err != nil {
				return err
			}
			if complete {
				classify.RecordUnknown = true
				if rows, err = q.RecordRejections(ctx, classify); err != nil {
					return fmt.Errorf("record unknown rejections: %w", err)
				}
			}
		}
		pending := map[int]bool{}
		for _, r := range rows {
			if r.Reason == reasonUnapplied {
				pending[int(r.Ord)] = true
				res.Pending = append(res.Pending, int(r.Ord))
				continue
			}
			reason, err := domain.ParseRejectionReason(r.Reason)
			if err != nil {
				return fmt.Errorf("classify vote %d: %w", r.Ord, err)
			}
			if reason != domain.RejectDuplicateVoter && !classify.RecordUnknown {
				pending[int(r.Ord)] = true
				res.Pending = append(res.Pending, int(r.Ord))
				continue
			}
			res.Rejected[reason]++
		}
		done := make([]Position, 0, len(batch))
		for i, e := range batch {
			if !pending[i] {
				pos := e.Position
				pos.Time = e.Event.Vote.CastAt()
				done = append(done, pos)
			}
		}
		return advance(ctx, q, done)
	})
	if err != nil {
		return VoteBatchResult{}, fmt.Errorf("apply %d votes: %w", len(batch), err)
	}
	return res, nil
}

// reasonUnapplied marks a vote that RecordRejections found registered but
// without a ballot: its registration committed after ApplyVotes looked.
const reasonUnapplied = "unapplied"

func hasUnknown(rows []db.RecordRejectionsRow) bool {
	for _, r := range rows {
		if r.Reason == domain.RejectUnknownVoter.String() || r.Reason == domain.RejectUnknownCandidate.String() {
			return true
		}
	}
	return false
}

// registrationComplete reports whether every candidates and voters message
// now in the log has been applied (or dead-lettered).
func (s *Store) registrationComplete(ctx context.Context, q *db.Queries) (bool, error) {
	topics := []string{domain.TopicCandidates, domain.TopicVoters}
	applied, err := q.ListAppliedOffsets(ctx, topics)
	if err != nil {
		return false, fmt.Errorf("list applied offsets: %w", err)
	}
	next := map[Position]int64{}
	for _, a := range applied {
		next[Position{Topic: a.Topic, Partition: a.Partition}] = a.NextOffset
	}
	for _, topic := range topics {
		hwms, err := s.highWatermarks(ctx, topic)
		if err != nil {
			return false, fmt.Errorf("high watermarks of %s: %w", topic, err)
		}
		for partition, hwm := range hwms {
			if hwm > 0 && next[Position{Topic: topic, Partition: partition}] < hwm {
				return false, nil
			}
		}
	}
	return true, nil
}

// RecordDeadLetter notes a message that can never be applied and moves its
// partition's applied offset past it.
func (s *Store) RecordDeadLetter(ctx context.Context, pos Position, reason string, payload []byte) error {
	err := s.inTx(ctx, func(q *db.Queries) error {
		if err := q.RecordDeadLetter(ctx, db.RecordDeadLetterParams{
			Topic: pos.Topic, Partition: pos.Partition, MessageOffset: pos.Offset, Reason: reason, Payload: payload,
		}); err != nil {
			return err
		}
		return advance(ctx, q, []Position{pos})
	})
	if err != nil {
		return fmt.Errorf("record dead letter %s/%d@%d: %w", pos.Topic, pos.Partition, pos.Offset, err)
	}
	return nil
}

func positions[E any](batch []Envelope[E]) []Position {
	out := make([]Position, len(batch))
	for i, e := range batch {
		out[i] = e.Position
	}
	return out
}

// advance records, per topic and partition, the offset after the highest
// position given.
func advance(ctx context.Context, q *db.Queries, done []Position) error {
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
			p = &db.AdvanceOffsetsParams{Topic: k.topic}
			byTopic[k.topic] = p
		}
		p.Partitions = append(p.Partitions, k.partition)
		p.NextOffsets = append(p.NextOffsets, off)
		p.LastEventAts = append(p.LastEventAts, pgtype.Timestamptz{Time: latest[k], Valid: !latest[k].IsZero()})
	}
	for topic, p := range byTopic {
		if err := q.AdvanceOffsets(ctx, *p); err != nil {
			return fmt.Errorf("advance offsets of %s: %w", topic, err)
		}
	}
	return nil
}
