package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
)

// Faults are the shares of votes that come with a deliberate fault, so the
// monitoring has something to catch. Each is a probability per vote.
type Faults struct {
	// Redeliveries publish the same vote message twice (same vote_id).
	Redeliveries float64
	// DoubleVotes add a second vote by the same voter (new vote_id).
	DoubleVotes float64
	// UnknownVoters add a vote by a voter who never registered.
	UnknownVoters float64
	// UnknownCandidates add a vote for a candidate who does not stand.
	UnknownCandidates float64
	// Malformed add a message that is not a valid vote event.
	Malformed float64
}

// Config tunes a simulation run.
type Config struct {
	Election *Election
	// Rate is votes per second (not counting fault messages).
	Rate float64
	// Faults injected among the votes.
	Faults Faults
	// TopicSize returns how many messages a topic holds, so a restarted
	// simulation resumes where the log ends instead of starting over.
	TopicSize func(ctx context.Context, topic string) (int64, error)
	// CloseRegistration, when set, is called once the register is in the
	// log and before the first vote, to close registration (publish the
	// close markers; see kafka.CloseRegistration).
	CloseRegistration func(ctx context.Context) error
	// CloseStations, when set, closes the election's stations once every
	// voting voter has voted, before the polls close: a close marker on
	// every votes partition, then their close reports (see
	// kafka.CloseStations). Without it the close reports alone are
	// published: reporting moves, nothing binds.
	CloseStations func(ctx context.Context, at time.Time, reports []domain.StationReported) error
	// OpenStations, when set, opens the election's stations before the
	// first vote (kafka.OpenStations: the rule's stations register on the
	// votes partitions). Without it, votes through its stations are
	// unknown_station.
	OpenStations func(ctx context.Context, at time.Time, stations []domain.Station) error
	// ClosePolls, when set, is called once every voting voter has voted,
	// to close the polls (the close_polls operator action): the published
	// figures then become exact.
	ClosePolls func(ctx context.Context) error
	// SealTo, when set, seals every vote's choice to the election's tally
	// key, as stations sealing their own votes do (contract v2).
	SealTo domain.TallyPublicKey
}

// Simulator publishes an election's events.
type Simulator struct {
	cfg Config
	pub message.Publisher
	log *slog.Logger
}

// New returns a simulator publishing through pub.
func New(cfg Config, pub message.Publisher, log *slog.Logger) (*Simulator, error) {
	if cfg.Election == nil || pub == nil || log == nil || cfg.TopicSize == nil {
		return nil, errors.New("new simulator: nil election, publisher, logger or topic size func")
	}
	if cfg.Rate <= 0 {
		return nil, fmt.Errorf("new simulator: rate %v must be positive", cfg.Rate)
	}
	return &Simulator{cfg: cfg, pub: pub, log: log}, nil
}

// Run registers the candidates and voters (unless the log already holds
// them), then casts votes at the configured rate until every voting voter
// has voted or ctx ends, then closes the polls (with Config.ClosePolls).
// Registration always precedes votes.
func (s *Simulator) Run(ctx context.Context) error {
	if err := s.Register(ctx); err != nil {
		return err
	}
	if err := s.Vote(ctx); err != nil {
		return err
	}
	if s.cfg.ClosePolls == nil {
		return nil
	}
	if err := s.cfg.ClosePolls(ctx); err != nil {
		return fmt.Errorf("close polls: %w", err)
	}
	s.log.Info("polls closed: the published figures are exact")
	return nil
}

// Register publishes the candidates and the register, skipping a topic the
// log already holds in full (a restarted demo keeps its election).
func (s *Simulator) Register(ctx context.Context) error {
	e := s.cfg.Election
	if len(e.Contests) > 0 {
		if err := publishAll(ctx, s, domain.TopicContests, e.Contests); err != nil {
			return err
		}
	}
	if err := publishAll(ctx, s, domain.TopicCandidates, e.Candidates); err != nil {
		return err
	}
	if err := publishAll(ctx, s, domain.TopicVoters, e.Voters); err != nil {
		return err
	}
	opens := e.StationReports(false, time.Now())
	if err := publishAll(ctx, s, domain.TopicStations, opens); err != nil {
		return err
	}
	if s.cfg.OpenStations != nil {
		stations := make([]domain.Station, len(opens))
		for i, r := range opens {
			stations[i] = r.Station()
		}
		if err := s.cfg.OpenStations(ctx, time.Now(), stations); err != nil {
			return fmt.Errorf("open the stations: %w", err)
		}
	}
	if s.cfg.CloseRegistration == nil {
		return nil
	}
	// Markers follow the register in the log: a topic holding more than the
	// register holds them already (a restarted demo).
	have, err := s.cfg.TopicSize(ctx, domain.TopicVoters)
	if err != nil {
		return fmt.Errorf("size of %s: %w", domain.TopicVoters, err)
	}
	if have > int64(len(e.Voters)) {
		return nil
	}
	if err := s.cfg.CloseRegistration(ctx); err != nil {
		return fmt.Errorf("close registration: %w", err)
	}
	s.log.Info("registration closed")
	return nil
}

func publishAll[E kafka.Event](ctx context.Context, s *Simulator, topic string, events []E) error {
	have, err := s.cfg.TopicSize(ctx, topic)
	if err != nil {
		return fmt.Errorf("size of %s: %w", topic, err)
	}
	if have >= int64(len(events)) {
		s.log.Info("registration already in the log", "topic", topic, "messages", have)
		return nil
	}
	const chunk = 2000
	for i := 0; i < len(events); i += chunk {
		msgs := make([]*message.Message, 0, chunk)
		for _, ev := range events[i:min(i+chunk, len(events))] {
			m, err := kafka.EventMessage(ev)
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.pub.Publish(topic, msgs...); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
	}
	s.log.Info("registration published", "topic", topic, "events", len(events))
	return nil
}

// Vote casts the votes, resuming after those already in the log.
func (s *Simulator) Vote(ctx context.Context) error {
	plan := NewVotePlan(s.cfg.Election, s.cfg.Faults)
	plan.SealTo(s.cfg.SealTo)
	have, err := s.cfg.TopicSize(ctx, domain.TopicVotes)
	if err != nil {
		return fmt.Errorf("size of votes: %w", err)
	}
	var skipped int64
	for skipped < have {
		step, ok := plan.Next(time.Now())
		if !ok {
			s.log.Info("every vote is already in the log", "messages", have)
			return nil
		}
		skipped += int64(len(step))
	}
	if have > 0 {
		s.log.Info("resuming voting", "messages_in_log", have, "votes_done", plan.Done())
	}
	s.log.Info("polls open", "voters", len(s.cfg.Election.Voters), "expected_votes", plan.Total(), "rate", s.cfg.Rate)

	const tick = 20 * time.Millisecond
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	perTick := s.cfg.Rate * tick.Seconds()
	var budget float64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		budget += perTick
		var msgs []*message.Message
		for ; budget >= 1; budget-- {
			step, ok := plan.Next(time.Now())
			if !ok {
				break
			}
			msgs = append(msgs, step...)
		}
		if len(msgs) > 0 {
			if err := s.pub.Publish(domain.TopicVotes, msgs...); err != nil {
				return fmt.Errorf("publish votes: %w", err)
			}
		}
		if plan.Done() == plan.Total() {
			// Every station reports closing: reporting progress reaches
			// all of them.
			if err := s.closeStations(ctx); err != nil {
				return err
			}
			s.log.Info("polls closed: every voting voter has voted, every station has closed", "votes", plan.Total())
			return nil
		}
	}
}

// VotePlan yields the election's votes in a fixed order: the same election
// and faults always give the same vote ids, voters and choices.
type VotePlan struct {
	e      *Election
	faults Faults
	rng    *rand.Rand
	// ballot draws the other contests' choices and vote ids, apart from
	// rng, so the default contest's plan is the same whatever the ballot.
	ballot *rand.Rand
	order  []int
	total  int
	next   int
	// seal, when set, seals each vote's choice as a station would
	// (contract v2); sealer is the current batch's.
	seal   domain.TallyPublicKey
	sealer *domain.Sealer
	sealed int
}

// sealBatch is how many votes share one encapsulation, as an intake
// request's (MaxBatch) do.
const sealBatch = 1000

// SealTo has the plan seal every vote's choice to key, as a station
// sealing its votes does: one encapsulation per sealBatch votes.
func (p *VotePlan) SealTo(key domain.TallyPublicKey) { p.seal = key }

// encode is the vote's message, sealed when the plan seals.
func (p *VotePlan) encode(v domain.Vote) *message.Message {
	if !p.seal.IsZero() {
		if p.sealer == nil || p.sealed >= sealBatch {
			s, err := domain.NewSealer(p.seal)
			if err != nil {
				panic(fmt.Sprintf("simulated vote: %v", err)) // only a broken system RNG fails
			}
			p.sealer, p.sealed = s, 0
		}
		p.sealed++
		var err error
		if v, err = p.sealer.Seal(v); err != nil {
			panic(fmt.Sprintf("simulated vote: %v", err))
		}
	}
	m, err := kafka.EventMessage(domain.VoteCast{Vote: v})
	if err != nil {
		panic(fmt.Sprintf("simulated vote: %v", err)) // a valid vote always encodes
	}
	return m
}

// NewVotePlan plans who votes, in which order and for whom.
func NewVotePlan(e *Election, faults Faults) *VotePlan {
	rng := rand.New(rand.NewPCG(e.seed, 2))
	order := rng.Perm(len(e.Voters))
	total := int(float64(len(e.Voters)) * e.turnout)
	return &VotePlan{e: e, faults: faults, rng: rng, ballot: rand.New(rand.NewPCG(e.seed, 3)), order: order, total: total}
}

// Total returns how many voters will vote.
func (p *VotePlan) Total() int { return p.total }

// Done returns how many voters have voted so far.
func (p *VotePlan) Done() int { return p.next }

// Next returns the messages of the next voter's vote (the vote, then any
// fault messages), or false when everyone has voted.
func (p *VotePlan) Next(now time.Time) ([]*message.Message, bool) {
	if p.next >= p.total {
		return nil, false
	}
	vi := p.order[p.next]
	p.next++
	voter := p.e.Voters[vi].Voter
	cand := p.e.choose(p.rng, p.e.voterRegion[vi])
	// Draw every fault decision each time so the stream of random numbers,
	// and so the plan, does not depend on the fault settings' outcomes.
	draws := [5]float64{p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64()}
	other := p.e.Candidates[p.rng.IntN(p.e.defaultCandidates)].Candidate.ID()

	vote := p.voteMessage(voter.ID(), cand.Candidate.ID(), now)
	msgs := []*message.Message{vote}
	// The rest of the ballot: one vote in each contest open to the voter.
	for _, b := range p.e.ballot {
		cum := b.prefs[p.e.voterRegion[vi]]
		if cum == nil {
			continue
		}
		choice := p.e.Candidates[b.first+pick(p.ballot, cum)].Candidate
		msgs = append(msgs, p.contestVote(voter.ID(), b.id, choice.ID(), now))
	}
	if draws[0] < p.faults.Redeliveries {
		msgs = append(msgs, vote.Copy())
	}
	if draws[1] < p.faults.DoubleVotes {
		msgs = append(msgs, p.voteMessage(voter.ID(), other, now.Add(time.Millisecond)))
	}
	if draws[2] < p.faults.UnknownVoters {
		msgs = append(msgs, p.voteMessage(fmt.Sprintf("v-unregistered-%d", p.next), other, now))
	}
	if draws[3] < p.faults.UnknownCandidates {
		msgs = append(msgs, p.voteMessage(voter.ID(), "c-not-standing", now))
	}
	if draws[4] < p.faults.Malformed {
		bad := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf(`{"vote_id":"not-a-uuid","voter_id":%q,"cast_at":"yesterday"}`, voter.ID())))
		bad.Metadata.Set("key", voter.ID())
		msgs = append(msgs, bad)
	}
	return msgs, true
}

func (p *VotePlan) voteMessage(voterID, candidateID string, at time.Time) *message.Message {
	id := p.uuid()
	v, err := domain.NewVote(id, voterID, candidateID, at)
	if err != nil {
		// Every input here is generated and valid by construction.
		panic(fmt.Sprintf("simulated vote: %v", err))
	}
	return p.encode(v)
}

// uuid returns a version-4 UUID drawn from the plan's seeded generator, so
// a resumed simulation republishes the same vote ids.
// contestVote is a vote in a contest other than the default one.
func (p *VotePlan) contestVote(voterID, contestID, candidateID string, at time.Time) *message.Message {
	v, err := domain.NewVote(uuidFrom(p.ballot), voterID, candidateID, at)
	if err == nil {
		v, err = v.InContest(contestID)
	}
	if err != nil {
		panic(fmt.Sprintf("simulated vote: %v", err)) // generated and valid by construction
	}
	return p.encode(v)
}

func (p *VotePlan) uuid() string { return uuidFrom(p.rng) }

func uuidFrom(rng *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		x := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// closeStations closes every station (kafka.CloseStations: a marker on
// every votes partition, then the close reports), unless the log holds
// their close reports already (a restarted demo): they follow the open
// reports.
func (s *Simulator) closeStations(ctx context.Context) error {
	at := time.Now()
	reports := s.cfg.Election.StationReports(true, at)
	have, err := s.cfg.TopicSize(ctx, domain.TopicStations)
	if err != nil {
		return fmt.Errorf("size of %s: %w", domain.TopicStations, err)
	}
	if have >= int64(2*len(reports)) {
		return nil
	}
	if s.cfg.CloseStations != nil {
		return s.cfg.CloseStations(ctx, at, reports)
	}
	msgs := make([]*message.Message, 0, len(reports))
	for _, r := range reports {
		m, err := kafka.EventMessage(r)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := s.pub.Publish(domain.TopicStations, msgs...); err != nil {
		return fmt.Errorf("publish station closes: %w", err)
	}
	return nil
}
