package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
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

// AppliedOffsets returns, for every topic a replay reads, the next offset
// the projection q reads needs from each partition (none: an empty map).
func AppliedOffsets(ctx context.Context, q *db.Queries) (map[string]map[int32]int64, error) {
	rows, err := q.ListAppliedOffsets(ctx, domain.EventTopics)
	if err != nil {
		return nil, fmt.Errorf("read applied offsets: %w", err)
	}
	out := map[string]map[int32]int64{}
	for _, t := range domain.EventTopics {
		out[t] = map[int32]int64{}
	}
	for _, row := range rows {
		out[row.Topic][row.Partition] = row.NextOffset
	}
	return out, nil
}

// Ident quotes s as an SQL identifier (a schema name).
func Ident(s string) string { return pgx.Identifier{s}.Sanitize() }
