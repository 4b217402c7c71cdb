package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
)

// AppliedOffsetsFunc returns, for each partition of topic, the offset of
// the first message the projection has not applied yet (the offsets stored
// with the tallies). A partition it has applied nothing from is absent.
type AppliedOffsetsFunc func(ctx context.Context, topic string) (map[int32]int64, error)

// resumeTracer is how the projection's own offsets reach sarama's consumer
// group: watermill-kafka v3 builds the sarama ConsumerGroupHandler itself
// and offers no hook into it except its Tracer, whose
// WrapConsumerGroupHandler sees every handler before the group starts
// (docs/upstream/watermill-kafka-assignment-hook.md). The other wraps are
// identities.
type resumeTracer struct {
	group   string
	applied AppliedOffsetsFunc
	// patience bounds how long Setup retries reading the projection's
	// offsets (heartbeats go on meanwhile) before it gives up the session;
	// the subscriber then reconnects and tries again.
	patience time.Duration
	log      watermill.LoggerAdapter
}

func (t resumeTracer) WrapConsumer(c sarama.Consumer) sarama.Consumer { return c }

func (t resumeTracer) WrapPartitionConsumer(pc sarama.PartitionConsumer) sarama.PartitionConsumer {
	return pc
}

func (t resumeTracer) WrapSyncProducer(_ *sarama.Config, p sarama.SyncProducer) sarama.SyncProducer {
	return p
}

func (t resumeTracer) WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler) sarama.ConsumerGroupHandler {
	return resumeHandler{ConsumerGroupHandler: h, t: t}
}

// resumeHandler moves each claimed partition back to where the projection
// needs it before any message is read.
//
// Why in Setup: sarama calls it once per generation, on every member, after
// the partition offset managers have fetched the group's commits and before
// a single claim starts, so a partition is never read from the group's
// offset first and corrected later. Every assignment, the first one of a
// process included, goes through it. (That holds for the eager protocol
// the subscriber uses; sarama's cooperative-sticky strategy adds partitions
// to a running session without a new Setup.)
//
// Why only backwards: the group's commit and applied_offsets are each a
// point below which every message is applied. The commit can be too far
// ahead when the projection database is newer than the group (recreated
// empty, restored from an older backup); applied_offsets only moves forward
// and is written in the same transaction as the tallies, so it is never
// ahead of what the tallies hold. Resuming from the lower of the two reads
// again, at worst, messages already applied, which applying ignores.
// sarama's ResetOffset only ever moves an offset back, and the rewound
// offset is committed with the next automatic commit.
//
// Several processes: a member reads applied_offsets for the partitions it
// was just given when its new generation starts. A previous owner still
// finishing a message can only move applied_offsets further on afterwards
// (never back), so the value read is never past what is applied: the worst
// case is again a message applied twice, to no effect.
type resumeHandler struct {
	sarama.ConsumerGroupHandler
	t resumeTracer
}

func (h resumeHandler) Setup(sess sarama.ConsumerGroupSession) error {
	for topic, partitions := range sess.Claims() {
		if len(partitions) == 0 {
			continue
		}
		applied, err := h.appliedOffsets(sess.Context(), topic)
		if err != nil {
			return err
		}
		fromStart := 0
		for _, p := range partitions {
			next, ok := applied[p]
			if !ok {
				// Nothing applied from p: from the log's start. Offset 0
				// below a truncated log start is out of range, which
				// sarama answers by starting at the oldest offset
				// (Consumer.Group.ResetInvalidOffsets).
				next = 0
				fromStart++
			}
			sess.ResetOffset(topic, p, next, "")
		}
		h.t.log.Debug("Partitions resume from the projection's offsets", watermill.LogFields{
			"consumer_group": h.t.group, "topic": topic, "partitions": len(partitions),
			"from_start": fromStart, "generation": sess.GenerationID(),
		})
	}
	return h.ConsumerGroupHandler.Setup(sess)
}

func (h resumeHandler) appliedOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	return readApplied(ctx, h.t.applied, h.t.group, topic, h.t.patience, h.t.log)
}

// readApplied reads the projection's offsets of topic, retrying for up to
// patience (a database outage must not make the member give up at once).
func readApplied(ctx context.Context, read AppliedOffsetsFunc, group, topic string, patience time.Duration, log watermill.LoggerAdapter) (map[int32]int64, error) {
	deadline := time.Now().Add(patience)
	backoff := 100 * time.Millisecond
	for {
		readCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		applied, err := read(readCtx, topic)
		cancel()
		if err == nil {
			return applied, nil
		}
		if time.Now().Add(backoff).After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("resume group %s on %s from the projection's offsets: %w", group, topic, err)
		}
		log.Error("Cannot read the projection's offsets; retrying", err, watermill.LogFields{
			"consumer_group": group, "topic": topic,
		})
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("resume group %s on %s: %w", group, topic, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
