package write

import (
	"context"
	"fmt"

	"github.com/votewatch/votewatch/projections/internal/db"
)

// AppliedOffsets returns, for each partition of topic the projection has
// applied (or dead-lettered) messages from, the offset of the next message
// it needs. They are written in the same transaction as the tallies, so
// they say exactly what this database holds, whatever a consumer group has
// committed.
func (s *Store) AppliedOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	rows, err := db.New(s.pool).ListAppliedOffsets(ctx, []string{topic})
	if err != nil {
		return nil, fmt.Errorf("applied offsets of %s: %w", topic, err)
	}
	out := make(map[int32]int64, len(rows))
	for _, r := range rows {
		out[r.Partition] = r.NextOffset
	}
	return out, nil
}
