package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/sql/db"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// sqlc's COPY names ballots unqualified: the ceiling's rows must land in
// the benchmark's schema, not in the live projection's.
func TestCopyBallotsCeilingWritesIntoItsOwnSchema(t *testing.T) {
	ctx := context.Background()
	pool := testutil.Pool(t)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	rows := []db.CopyCeilingBallotsParams{
		{VoterID: "v1", VoteID: pgtype.UUID{Bytes: uuid.New(), Valid: true}, CandidateID: "c1", Region: "north", CastAt: at},
		{VoterID: "v2", VoteID: pgtype.UUID{Bytes: uuid.New(), Valid: true}, CandidateID: "c2", Region: "south", CastAt: at},
	}
	n, err := postgres.CopyBallotsCeiling(ctx, pool, "bench ceiling", rows)
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
