package write_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/write"
)

// sqlc's COPY names ballots unqualified: the ceiling's rows must land in
// the benchmark's schema, not in the live projection's.
func TestCopyBallotsCeilingWritesIntoItsOwnSchema(t *testing.T) {
	ctx := context.Background()
	pool := testutil.Pool(t)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	rows := []write.CeilingBallot{
		{VoterID: "v1", VoteID: uuid.New(), Region: "north", CastAt: at},
		{VoterID: "v2", VoteID: uuid.New(), Region: "south", CastAt: at},
	}
	n, err := write.CopyBallotsCeiling(ctx, pool, postgres.Schema, "bench ceiling", rows)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if n != 2 {
		t.Fatalf("copied %d rows, want 2", n)
	}
	var inTarget, inLive int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM "bench ceiling".ballots WHERE region IN ('north', 'south')), (SELECT count(*) FROM votewatch.ballots)`).Scan(&inTarget, &inLive); err != nil {
		t.Fatalf("count: %v", err)
	}
	if inTarget != 2 || inLive != 0 {
		t.Fatalf("ballots in the target: %d, in the live projection: %d; want 2 and 0", inTarget, inLive)
	}
	// The pool's sessions still resolve names in the live projection.
	var path string
	if err := pool.QueryRow(ctx, "SHOW search_path").Scan(&path); err != nil {
		t.Fatalf("search_path: %v", err)
	}
	if path != `"votewatch"` {
		t.Fatalf("search_path after the copy: %s, want \"votewatch\"", path)
	}
	if err := postgres.DropSchemas(ctx, pool, "bench ceiling"); err != nil {
		t.Fatal(err)
	}
}
