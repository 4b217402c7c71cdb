package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/write"
)

// RealtimeVoting is the bridge from realtime_voting's topics (contract
// rtv1, domain.DecodeRealtimeVotingVoter and DecodeRealtimeVotingVote) to
// votewatch's own: each voters_topic message becomes a VoterRegistered on
// voters, each votes_topic message a VoteCast on votes, keyed by voter_id
// so that the publisher's murmur2 puts every vote of a voter on that
// voter's partition whoever produced it. A message of neither shape goes
// to <topic>.dlq with the error in the reason_poisoned header.
//
// Why a bridge and not a projector that reads both: decisions are made
// from the votes topic's partitions alone (first vote wins in log order,
// the transparency log's trees, replay), and a voter whose votes came both
// CRC32-partitioned (confluent-kafka) and murmur2-partitioned would have
// them on two partitions with no order between them. Re-keyed onto votes,
// they share one. The bridge only translates, so it is at-least-once: a
// message translated twice (a crash before its offset was committed) is a
// repeat of the same vote_id, or a second registration of a voter, which
// changes nothing.
//
// Translations are published in batches (a group commit, as the
// projector's): a message is acknowledged once the batch holding its
// translation is on the log, and the subscriber hands out a voter's next
// message only after that, so a voter's messages keep their order.
type RealtimeVoting struct {
	log                         *slog.Logger
	voters, votes, deadLettered atomic.Int64
	// out publishes translations per destination topic.
	out map[string]*write.Batcher[*message.Message]

	// sealMu guards the sealing state: the tally key votes are sealed to
	// (none: translated in clear), and the current sealer with how many
	// votes it sealed. One encapsulation serves sealEvery votes, as one
	// does an intake batch, so sealing costs an AEAD operation per vote.
	sealMu sync.Mutex
	sealTo domain.TallyPublicKey
	sealer *domain.Sealer
	sealed int
}

// sealEvery is how many translated votes share one HPKE encapsulation: an
// intake batch's most.
const sealEvery = 1000

// SealTo has the bridge seal every vote it translates to the election's
// tally key (contract v2), as a station sealing its own votes does. Call
// it before the bridge runs.
func (b *RealtimeVoting) SealTo(key domain.TallyPublicKey) {
	b.sealMu.Lock()
	defer b.sealMu.Unlock()
	b.sealTo, b.sealer, b.sealed = key, nil, 0
}

// seal seals v's choice when the bridge has a tally key.
func (b *RealtimeVoting) seal(v domain.Vote) (domain.Vote, error) {
	b.sealMu.Lock()
	defer b.sealMu.Unlock()
	if b.sealTo.IsZero() {
		return v, nil
	}
	if b.sealer == nil || b.sealed >= sealEvery {
		s, err := domain.NewSealer(b.sealTo)
		if err != nil {
			return domain.Vote{}, err
		}
		b.sealer, b.sealed = s, 0
	}
	b.sealed++
	return b.sealer.Seal(v)
}

// RealtimeVotingStats counts what one bridge translated since it started.
type RealtimeVotingStats struct {
	Voters, Votes, DeadLettered int64
}

// NewRealtimeVoting returns the bridge's handlers, publishing translations
// with pub, which must partition by the "key" metadata with murmur2
// (kafka.Publisher). Run its batches with Run.
func NewRealtimeVoting(log *slog.Logger, pub message.Publisher) (*RealtimeVoting, error) {
	if log == nil || pub == nil {
		return nil, errors.New("new realtime_voting bridge: nil logger or publisher")
	}
	b := &RealtimeVoting{log: log, out: map[string]*write.Batcher[*message.Message]{}}
	for _, topic := range []string{domain.TopicVoters, domain.TopicVotes} {
		batcher, err := write.NewBatcher(write.BatcherConfig{
			Name: "bridge-" + topic, MaxBatch: 1000, Writers: 2, Linger: 2 * time.Millisecond,
		}, func(_ context.Context, msgs []*message.Message) ([]error, error) {
			return nil, pub.Publish(topic, msgs...)
		}, log)
		if err != nil {
			return nil, err
		}
		b.out[topic] = batcher
	}
	return b, nil
}

// Run publishes batches of translations until ctx ends (a batch taken is
// finished). Stop it after the router, whose handlers wait on it.
func (b *RealtimeVoting) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, batcher := range b.out {
		wg.Go(func() { batcher.Run(ctx) })
	}
	wg.Wait()
}

// Stats returns the bridge's counters (a message read again after its
// translation failed to publish is counted again).
func (b *RealtimeVoting) Stats() RealtimeVotingStats {
	return RealtimeVotingStats{Voters: b.voters.Load(), Votes: b.votes.Load(), DeadLettered: b.deadLettered.Load()}
}

// Voter translates a voters_topic message into a voters message. A voter
// without registered_date registers at the message's log time.
func (b *RealtimeVoting) Voter(msg *message.Message) ([]*message.Message, error) {
	at := position(msg).Time
	if at.IsZero() {
		// A broker that stamps no time: the first registration of a voter
		// wins, so a redelivery translated at another time changes nothing.
		at = time.Now()
	}
	ev, err := domain.DecodeRealtimeVotingVoter(msg.Payload, at)
	if err != nil {
		return nil, b.poison(msg, err)
	}
	b.voters.Add(1)
	return translated(ev, position(msg).Time)
}

// Vote translates a votes_topic message into a votes message.
func (b *RealtimeVoting) Vote(msg *message.Message) ([]*message.Message, error) {
	ev, err := domain.DecodeRealtimeVotingVote(msg.Payload)
	if err != nil {
		return nil, b.poison(msg, err)
	}
	// Not the message's fault if sealing fails: no dead letter, the
	// message is read again.
	if ev.Vote, err = b.seal(ev.Vote); err != nil {
		return nil, fmt.Errorf("seal the translated vote: %w", err)
	}
	b.votes.Add(1)
	return translated(ev, position(msg).Time)
}

func (b *RealtimeVoting) poison(msg *message.Message, err error) error {
	pos := position(msg)
	if key, ok := messageKey(msg.Context()); ok {
		msg.Metadata.Set("key", string(key))
	}
	// The dead letter keeps its log time; this also overrides a header
	// of that name the publisher could not read.
	delete(msg.Metadata, "timestamp")
	if !pos.Time.IsZero() {
		msg.Metadata.Set("timestamp", pos.Time.UTC().Format(time.RFC3339Nano))
	}
	b.deadLettered.Add(1)
	b.log.Warn("dead-lettering a realtime_voting message of neither shape", "topic", pos.Topic, "partition", pos.Partition, "offset", pos.Offset, "err", err)
	return fmt.Errorf("%w: %w", ErrPoison, err)
}

type keyedEvent interface {
	MarshalJSON() ([]byte, error)
	Key() string
}

// translated is ev as votewatch's contract puts it on the log, keyed for
// the publisher's partitioner (the "key" metadata, as kafka.KeyedMessage)
// and stamped with its source's log time (kafka.TimestampMetadata): the
// rule checks a vote's cast time against its log time, and a backlog
// translated days later is as plausible as when voting.py sent it.
func translated(ev keyedEvent, loggedAt time.Time) ([]*message.Message, error) {
	payload, err := ev.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode translated event: %w", err)
	}
	out := message.NewMessage(watermill.NewUUID(), payload)
	out.Metadata.Set("key", ev.Key())
	if !loggedAt.IsZero() {
		out.Metadata.Set("timestamp", loggedAt.UTC().Format(time.RFC3339Nano))
	}
	return []*message.Message{out}, nil
}

// publishing returns a consumer handler that translates each message and
// returns once the translation is on the log.
func (b *RealtimeVoting) publishing(to string, translate message.HandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		out, err := translate(msg)
		if err != nil {
			return err
		}
		for _, m := range out {
			if err := b.out[to].Submit(msg.Context(), m); err != nil {
				return fmt.Errorf("publish translation to %s: %w", to, err)
			}
		}
		return nil
	}
}

// AddRealtimeVotingHandlers routes voters_topic to voters and votes_topic
// to votes through b, each topic read through its subscriber in subs.
// Middleware, outermost first: the poison queue (a message of neither
// shape, or one whose handling panicked, to <topic>.dlq with the reason,
// published with dlq) and the recoverer. A message is acknowledged only
// once its translation is on the log; a publish that fails nacks it, so
// it is read again: nothing is lost or skipped.
func AddRealtimeVotingHandlers(router *message.Router, subs Subscribers, dlq message.Publisher, b *RealtimeVoting) error {
	routes := []struct {
		from, to string
		fn       message.HandlerFunc
	}{
		{domain.TopicRealtimeVoters, domain.TopicVoters, b.Voter},
		{domain.TopicRealtimeVotes, domain.TopicVotes, b.Vote},
	}
	for _, r := range routes {
		sub, ok := subs[r.from]
		if !ok {
			return fmt.Errorf("add realtime_voting handlers: no subscriber for %s", r.from)
		}
		poison, err := middleware.PoisonQueueWithFilter(dlq, domain.DeadLetterTopic(r.from), isPoison)
		if err != nil {
			return fmt.Errorf("poison queue for %s: %w", r.from, err)
		}
		router.AddConsumerHandler("bridge-"+r.from, r.from, sub, b.publishing(r.to, r.fn)).
			AddMiddleware(poison, middleware.Recoverer)
	}
	return nil
}
