// Package handlers holds the inbound adapters: Watermill message handlers
// that feed the projector, and the HTTP read API.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/write"
)

// ErrPoison marks a message that can never be applied; the poison-queue
// middleware moves such messages to <topic>.dlq and the stream goes on.
var ErrPoison = errors.New("poison message")

// EventHandlers decode the contract's events and hand them to the projector.
type EventHandlers struct {
	projector *write.Projector
	log       *slog.Logger
	// opener opens sealed votes and refuses clear ones when the election
	// requires sealing (nil: no tally key, clear votes only).
	opener *domain.Opener
}

// NewEventHandlers returns handlers feeding projector.
func NewEventHandlers(projector *write.Projector, log *slog.Logger) (*EventHandlers, error) {
	if projector == nil || log == nil {
		return nil, errors.New("new event handlers: nil projector or logger")
	}
	return &EventHandlers{projector: projector, log: log}, nil
}

// OpenWith has votes decoded through o (domain.Opener): sealed choices
// opened with the tally key, clear votes refused when o requires sealing.
// Call it before the handlers run.
func (h *EventHandlers) OpenWith(o *domain.Opener) { h.opener = o }

// OperatorAction handles a message of the operator actions topic.
func (h *EventHandlers) OperatorAction(msg *message.Message) error {
	return handle(h, msg, domain.DecodeOperatorActed, h.projector.OperatorAction)
}

// StationReport handles a message of the stations topic.
func (h *EventHandlers) StationReport(msg *message.Message) error {
	return handle(h, msg, domain.DecodeStationReported, h.projector.StationReport)
}

// Contest handles a message of the contests topic: a registration or a
// close marker.
func (h *EventHandlers) Contest(msg *message.Message) error {
	if closed, err := h.closeMarker(msg); closed {
		return err
	}
	return handle(h, msg, domain.DecodeContestRegistered, h.projector.Contest)
}

// Candidate handles a message of the candidates topic: a registration or a
// close marker.
func (h *EventHandlers) Candidate(msg *message.Message) error {
	if closed, err := h.closeMarker(msg); closed {
		return err
	}
	return handle(h, msg, domain.DecodeCandidateRegistered, h.projector.Candidate)
}

// Voter handles a message of the voters topic: a registration or a close
// marker.
func (h *EventHandlers) Voter(msg *message.Message) error {
	if closed, err := h.closeMarker(msg); closed {
		return err
	}
	return handle(h, msg, domain.DecodeVoterRegistered, h.projector.Voter)
}

// closeMarker applies msg when it is a registration close marker and
// reports whether it was one.
func (h *EventHandlers) closeMarker(msg *message.Message) (bool, error) {
	if _, ok, _ := domain.DecodeRegistrationClosed(msg.Payload); !ok {
		return false, nil
	}
	return true, handle(h, msg, func(payload []byte) (domain.RegistrationClosed, error) {
		e, _, err := domain.DecodeRegistrationClosed(payload)
		return e, err
	}, h.projector.CloseRegistration)
}

// Vote handles a message of the votes topic: a vote or a control event
// (a schedule, stations' opening or close).
func (h *EventHandlers) Vote(msg *message.Message) error {
	if _, ok, _ := domain.DecodeVotesControl(msg.Payload); ok {
		return handle(h, msg, func(payload []byte) (any, error) {
			e, _, err := domain.DecodeVotesControl(payload)
			return e, err
		}, h.projector.VotesControl)
	}
	return handle(h, msg, h.opener.DecodeVoteCast, h.projector.Vote)
}

func handle[E any](h *EventHandlers, msg *message.Message,
	decode func([]byte) (E, error), apply func(context.Context, projections.Envelope[E]) error,
) error {
	ctx := msg.Context()
	pos := position(msg)
	event, err := decode(msg.Payload)
	if errors.Is(err, domain.ErrTallyKey) {
		// Not the vote's fault: this process cannot open it. Dead-lettering
		// would decide it differently from a replay holding the key, so the
		// partition waits (retried) until the key is fixed.
		h.log.Error("cannot open a sealed vote: start the projector with the election's tally key (--tally-key)", "err", err)
		return err
	}
	if err != nil {
		if recErr := h.projector.DeadLetter(ctx, pos, err.Error(), msg.Payload); recErr != nil {
			return recErr // transient: retried, and decoded again
		}
		if key, ok := messageKey(ctx); ok {
			msg.Metadata.Set("key", string(key))
		}
		h.log.Warn("dead-lettering malformed event", "topic", pos.Topic, "partition", pos.Partition, "offset", pos.Offset, "err", err)
		return fmt.Errorf("%w: %w", ErrPoison, err)
	}
	return apply(ctx, projections.Envelope[E]{Event: event, Position: pos})
}

func position(msg *message.Message) projections.Position {
	ctx := msg.Context()
	pos := projections.Position{Topic: message.SubscribeTopicFromCtx(ctx)}
	if r, ok := ctx.Value(recordKey{}).(record); ok {
		pos.Partition, pos.Offset, pos.Time = r.partition, r.offset, r.at
		return pos
	}
	pos.Partition, _ = wmkafka.MessagePartitionFromCtx(ctx)
	pos.Offset, _ = wmkafka.MessagePartitionOffsetFromCtx(ctx)
	pos.Time, _ = wmkafka.MessageTimestampFromCtx(ctx)
	return pos
}

// messageKey is the Kafka key of the message being handled, from either
// subscriber.
func messageKey(ctx context.Context) ([]byte, bool) {
	if r, ok := ctx.Value(recordKey{}).(record); ok {
		return r.key, true
	}
	return wmkafka.MessageKeyFromCtx(ctx)
}

type recordKey struct{}

type record struct {
	partition int32
	offset    int64
	at        time.Time
	key       []byte
}

// ContextWithRecord returns ctx carrying a consumed record's place in the
// log, for subscribers other than watermill-kafka's (whose own context
// setters are unexported): the handlers read it as they read
// watermill-kafka's values. Its signature is kafka.AnnotateFunc.
func ContextWithRecord(ctx context.Context, partition int32, offset int64, at time.Time, key []byte) context.Context {
	return context.WithValue(ctx, recordKey{}, record{partition: partition, offset: offset, at: at, key: key})
}

// Subscribers gives the subscriber (one consumer group each) for a topic.
type Subscribers map[string]message.Subscriber

// AddProjectionHandlers routes the three event topics to h. Each handler's
// middleware, outermost first: the poison queue (only ErrPoison and panics
// go to <topic>.dlq), a dead letter's record for a panic, the recoverer (a
// panic becomes an error, not a crash), and retry with backoff for transient errors (a database outage, a
// vote batch that lost a deadlock). A transient error that outlasts the
// retries nacks the message, which Kafka redelivers: it is never
// dead-lettered, so an outage loses nothing.
func AddProjectionHandlers(router *message.Router, subs Subscribers, dlq message.Publisher, h *EventHandlers, logger watermill.LoggerAdapter) error {
	routes := []struct {
		topic string
		fn    message.NoPublishHandlerFunc
	}{
		{domain.TopicContests, h.Contest},
		{domain.TopicCandidates, h.Candidate},
		{domain.TopicVoters, h.Voter},
		{domain.TopicVotes, h.Vote},
		{domain.TopicStations, h.StationReport},
		{domain.TopicOperatorActions, h.OperatorAction},
	}
	for _, r := range routes {
		sub, ok := subs[r.topic]
		if !ok {
			return fmt.Errorf("add projection handlers: no subscriber for %s", r.topic)
		}
		mw, err := h.projectionMiddleware(dlq, r.topic, logger)
		if err != nil {
			return err
		}
		router.AddConsumerHandler("project-"+r.topic, r.topic, sub, r.fn).AddMiddleware(mw...)
	}
	return nil
}

// projectionMiddleware is a projection handler's middleware, outermost
// first (see AddProjectionHandlers).
func (h *EventHandlers) projectionMiddleware(dlq message.Publisher, topic string, logger watermill.LoggerAdapter) ([]message.HandlerMiddleware, error) {
	poison, err := middleware.PoisonQueueWithFilter(dlq, domain.DeadLetterTopic(topic), isPoison)
	if err != nil {
		return nil, fmt.Errorf("poison queue for %s: %w", topic, err)
	}
	retry := middleware.Retry{
		MaxRetries:      6,
		InitialInterval: 50 * time.Millisecond,
		MaxInterval:     2 * time.Second,
		Multiplier:      2,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !isPoison(p.Err) },
		Logger:          logger,
	}
	return []message.HandlerMiddleware{poison, h.deadLetterPanics, middleware.Recoverer, retry.Middleware}, nil
}

// deadLetterPanics records a message whose handling panicked as a dead
// letter, as a message that does not decode is: the poison queue sends it
// to <topic>.dlq, and the projection must say it was never applied, or
// the partition's next offset runs past a message nothing accounts for
// (the transparency log's trees stop at it).
func (h *EventHandlers) deadLetterPanics(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := next(msg)
		var panicErr middleware.RecoveredPanicError
		if errors.As(err, &panicErr) {
			if recErr := h.projector.DeadLetter(msg.Context(), position(msg), "panicked while applied", msg.Payload); recErr != nil {
				// Not recorded: retried as a failure, not dropped.
				return out, fmt.Errorf("record dead letter: %w", recErr)
			}
		}
		return out, err
	}
}

func isPoison(err error) bool {
	var panicErr middleware.RecoveredPanicError
	return errors.Is(err, ErrPoison) || errors.As(err, &panicErr)
}
