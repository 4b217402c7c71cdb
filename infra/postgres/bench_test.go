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
		{VoterID: "v1", VoteID: pgtype.UUID{Bytes: uuid.New(), Valid: true}, Region: "north", CastAt: at},
		{VoterID: "v2", VoteID: pgtype.UUID{Bytes: uuid.New(), Valid: true}, Region: "south", CastAt: at},
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

// The bench's projections start from a copy of the register: it must fit
// the migrated schema's tables whatever columns the migrations left them.
func TestCopyRegisterFillsAFreshlyMigratedSchema(t *testing.T) {
	ctx := context.Background()
	live := testutil.Pool(t)
	dsn := live.Config().ConnString()
	if _, err := live.Exec(ctx, `INSERT INTO regions (region, registered_voters) VALUES ('north', 2);
		INSERT INTO applied_offsets (topic, partition, next_offset) VALUES ('voters', 0, 2), ('votes', 0, 9)`); err != nil {
		t.Fatal(err)
	}
	target, err := postgres.ConnectSchema(ctx, dsn, "bench_register", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	m, err := postgres.NewMigrator(target)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := postgres.CopyRegister(ctx, live, "bench_register"); err != nil {
		t.Fatalf("copy the register into a migrated schema: %v", err)
	}
	var regions, offsets int
	if err := target.QueryRow(ctx, `SELECT (SELECT count(*) FROM regions), (SELECT count(*) FROM applied_offsets)`).Scan(&regions, &offsets); err != nil {
		t.Fatal(err)
	}
	if regions != 1 || offsets != 1 {
		t.Fatalf("copied %d regions and %d offsets, want 1 and 1 (the votes' offsets stay behind)", regions, offsets)
	}
	if err := postgres.DropSchemas(ctx, live, "bench_register"); err != nil {
		t.Fatal(err)
	}
}
