package write

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
)

// ProjectorConfig tunes the live projector's group commits.
type ProjectorConfig struct {
	// TopicPartitions reports a topic's partition count, which a close
	// marker must declare (Store.CloseRegistration) and by which a vote's
	// partition is checked (Store.SetVotePartitions).
	TopicPartitions func(ctx context.Context, topic string) (int, error)
	// Votes tunes the votes batcher (the hot path).
	Votes BatcherConfig
	// Registrations tunes the candidates and voters batchers.
	Registrations BatcherConfig
}

// Projector is the live write path: concurrent handlers submit events, which
// are applied in group-committed batches, and each submitter learns its own
// event's fate only after its batch has committed. Safe for concurrent use.
type Projector struct {
	store      *Store
	partitions func(ctx context.Context, topic string) (int, error)
	contests   *Batcher[projections.Envelope[domain.ContestRegistered]]
	stations   *Batcher[projections.Envelope[domain.StationReported]]
	actions    *Batcher[projections.Envelope[domain.OperatorActed]]
	candidates *Batcher[projections.Envelope[domain.CandidateRegistered]]
	voters     *Batcher[projections.Envelope[domain.VoterRegistered]]
	votes      *Batcher[projections.Envelope[domain.VoteCast]]
	stats      projectorStats
}

type projectorStats struct {
	votesAccepted atomic.Int64
	votesRejected atomic.Int64
	votesHeld     atomic.Int64
	batches       atomic.Int64
	deadLettered  atomic.Int64
}

// ProjectorStats are counters since the process started (redeliveries
// included in Rejected, since a redelivered rejection is rejected again).
type ProjectorStats struct {
	VotesAccepted, VotesRejected, VotesHeld, VoteBatches, DeadLettered int64
}

// NewProjector returns a projector writing through store. Call Run.
func NewProjector(store *Store, cfg ProjectorConfig, log *slog.Logger) (*Projector, error) {
	if store == nil || log == nil {
		return nil, errors.New("new projector: nil store or logger")
	}
	if cfg.TopicPartitions == nil {
		return nil, errors.New("new projector: nil topic partitions func")
	}
	p := &Projector{store: store, partitions: cfg.TopicPartitions}
	var err error
	cfg.Votes.Name = "votes"
	if p.votes, err = NewBatcher(cfg.Votes, p.applyVotes, log); err != nil {
		return nil, err
	}
	cfg.Registrations.Name = "voters"
	if p.voters, err = NewBatcher(cfg.Registrations, p.applyVoters, log); err != nil {
		return nil, err
	}
	cfg.Registrations.Name = "candidates"
	if p.candidates, err = NewBatcher(cfg.Registrations, p.applyCandidates, log); err != nil {
		return nil, err
	}
	cfg.Registrations.Name = "contests"
	if p.contests, err = NewBatcher(cfg.Registrations, p.applyContests, log); err != nil {
		return nil, err
	}
	cfg.Registrations.Name = "audit"
	if p.actions, err = NewBatcher(cfg.Registrations, func(ctx context.Context, batch []projections.Envelope[domain.OperatorActed]) ([]error, error) {
		return nil, p.store.RecordOperatorActions(ctx, batch)
	}, log); err != nil {
		return nil, err
	}
	cfg.Registrations.Name = "stations"
	if p.stations, err = NewBatcher(cfg.Registrations, func(ctx context.Context, batch []projections.Envelope[domain.StationReported]) ([]error, error) {
		return nil, p.store.ApplyStationReports(ctx, batch)
	}, log); err != nil {
		return nil, err
	}
	return p, nil
}

// CloseRegistration applies a registration close marker. Markers are rare
// and order every registration after them, so each is its own transaction.
func (p *Projector) CloseRegistration(ctx context.Context, e projections.Envelope[domain.RegistrationClosed]) error {
	n, err := p.partitions(ctx, e.Position.Topic)
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", e.Position.Topic, err)
	}
	res, err := p.store.CloseRegistration(ctx, e.Position, e.Event, n)
	p.count(res.Released)
	return err
}

// VotesControl applies a control event read on a votes partition (a
// schedule, a station's close marker). Like registration markers, they are
// rare, so each is its own transaction; the partition's later votes wait
// for it.
func (p *Projector) VotesControl(ctx context.Context, e projections.Envelope[any]) error {
	return p.store.RecordVotesControl(ctx, e.Position, e.Event)
}

// Run applies batches until ctx ends, finishing those in flight.
func (p *Projector) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { p.contests.Run(ctx) })
	wg.Go(func() { p.stations.Run(ctx) })
	wg.Go(func() { p.actions.Run(ctx) })
	wg.Go(func() { p.candidates.Run(ctx) })
	wg.Go(func() { p.voters.Run(ctx) })
	wg.Go(func() { p.votes.Run(ctx) })
	wg.Wait()
}

// OperatorAction records an operator action; it returns after commit.
func (p *Projector) OperatorAction(ctx context.Context, e projections.Envelope[domain.OperatorActed]) error {
	return p.actions.Submit(ctx, e)
}

// StationReport applies a polling station's report; it returns after
// commit.
func (p *Projector) StationReport(ctx context.Context, e projections.Envelope[domain.StationReported]) error {
	return p.stations.Submit(ctx, e)
}

// Contest applies a contest registration; it returns after commit.
func (p *Projector) Contest(ctx context.Context, e projections.Envelope[domain.ContestRegistered]) error {
	return p.contests.Submit(ctx, e)
}

// Candidate applies a candidate registration; it returns after commit.
func (p *Projector) Candidate(ctx context.Context, e projections.Envelope[domain.CandidateRegistered]) error {
	return p.candidates.Submit(ctx, e)
}

// Voter applies a voter registration; it returns after commit.
func (p *Projector) Voter(ctx context.Context, e projections.Envelope[domain.VoterRegistered]) error {
	return p.voters.Submit(ctx, e)
}

// Vote decides a vote (or holds it until its registration); it returns
// after commit.
func (p *Projector) Vote(ctx context.Context, e projections.Envelope[domain.VoteCast]) error {
	return p.votes.Submit(ctx, e)
}

// DeadLetter records an event that can never be applied.
func (p *Projector) DeadLetter(ctx context.Context, pos projections.Position, reason string, payload []byte) error {
	if err := p.store.RecordDeadLetter(ctx, pos, reason, payload); err != nil {
		return err
	}
	p.stats.deadLettered.Add(1)
	return nil
}

// Stats returns counters since the process started.
func (p *Projector) Stats() ProjectorStats {
	return ProjectorStats{
		VotesAccepted: p.stats.votesAccepted.Load(), VotesRejected: p.stats.votesRejected.Load(),
		VotesHeld: p.stats.votesHeld.Load(), VoteBatches: p.stats.batches.Load(),
		DeadLettered: p.stats.deadLettered.Load(),
	}
}

func (p *Projector) applyVotes(ctx context.Context, batch []projections.Envelope[domain.VoteCast]) ([]error, error) {
	// Rule 0 checks each vote's partition against the topic's count, read
	// once: it must not change during an election.
	if p.store.VotePartitions() == 0 {
		n, err := p.partitions(ctx, domain.TopicVotes)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", domain.TopicVotes, err)
		}
		p.store.SetVotePartitions(n)
	}
	res, err := p.store.ApplyVotes(ctx, batch)
	if err != nil {
		return nil, err
	}
	p.stats.batches.Add(1)
	p.count(res)
	return nil, nil
}

// count adds what became of decided votes, in a vote batch or released by
// a registration, to the process's counters.
func (p *Projector) count(res VoteBatchResult) {
	p.stats.votesAccepted.Add(res.Accepted)
	p.stats.votesHeld.Add(res.Held)
	for _, n := range res.Rejected {
		p.stats.votesRejected.Add(int64(n))
	}
}

func (p *Projector) applyVoters(ctx context.Context, batch []projections.Envelope[domain.VoterRegistered]) ([]error, error) {
	res, err := p.store.ApplyVoters(ctx, batch)
	p.count(res.Released)
	return nil, err
}

func (p *Projector) applyContests(ctx context.Context, batch []projections.Envelope[domain.ContestRegistered]) ([]error, error) {
	res, err := p.store.ApplyContests(ctx, batch)
	p.count(res.Released)
	return nil, err
}

func (p *Projector) applyCandidates(ctx context.Context, batch []projections.Envelope[domain.CandidateRegistered]) ([]error, error) {
	res, err := p.store.ApplyCandidates(ctx, batch)
	p.count(res.Released)
	return nil, err
}
