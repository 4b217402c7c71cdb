package postgres_test

import (
	"context"
	"testing"

	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

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
