// Package projections is what every part of the projection shares: where
// an event sits in the log (Position, Envelope), the log as a replay or a
// recount reads it (ReplayLog), and the registry of the projection's tables
// (Tables).
//
// The projection itself is split by role, one package each:
//
//   - write: the write model. The Projector hands events to batchers; the
//     Store decides each batch (domain.Decide) and applies it in one
//     transaction with its offsets; the Releaser publishes held figures.
//   - read: the read model. Results reads tallies, turnout, contests, the
//     dashboard, the status, the published figures, the canvass, ballot
//     receipts and the operator log.
//   - trees: the transparency trees (one append-only tree of decisions)
//     and the Checkpointer that signs their heads.
//   - rebuild: replay, which rebuilds the projection from offset 0 in a
//     fresh schema and swaps it in.
//   - audit: the independent check of the projection against the log
//     (Recount, AuditTrees), deciding every vote again with domain.Count.
//
// The generated queries (internal/db) and what the packages share in using
// them (internal/dbutil: the swap lock every live transaction holds, the
// applied offsets) are visible only under this directory: nothing outside
// the projection touches its rows.
package projections

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a requested region or candidate does not exist.
var ErrNotFound = errors.New("not found")

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
