package projections

import (
	"context"
	"time"
)

// LogRecord is one message as a replay reads it.
type LogRecord struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Time      time.Time
}

// ReplayLog is the event log as a replay reads it: partition by partition,
// directly, between offsets.
type ReplayLog interface {
	HighWatermarks(ctx context.Context, topic string) (map[int32]int64, error)
	LowWatermarks(ctx context.Context, topic string) (map[int32]int64, error)
	// ReadRange hands fn the records of topic from from[p] up to, not
	// including, to[p], in log order per partition. fn must not keep the
	// slice.
	ReadRange(ctx context.Context, topic string, from, to map[int32]int64, fn func([]LogRecord) error) error
}
