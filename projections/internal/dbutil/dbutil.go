// Package dbutil is what the projection's packages share in how they use
// the database: the swap lock every live transaction holds, the applied
// offsets, SQL identifiers and nullable times. It is internal: nothing
// outside the projection needs it.
package dbutil

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
)

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
