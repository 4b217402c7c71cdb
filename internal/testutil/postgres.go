// Package testutil starts the real dependencies tests run against: a
// private PostgreSQL cluster (or DATABASE_URL) and an in-process Kafka
// broker on loopback.
package testutil

import (
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/infra/postgres"
)

const templateDB = "votewatch_template"

// pg is the test binary's database server: started on first use, stopped
// by Main when the tests finish.
var pg struct {
	once    sync.Once
	cluster *postgres.Cluster
	dir     string
	err     error
	// admin connects to a database from which new ones are created.
	adminDSN string
	dsnFor   func(db string) string
	seq      atomic.Int64
}

// Main runs the package's tests and then stops the private cluster, so no
// server outlives the test binary. Use it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if pg.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := pg.cluster.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "testutil:", err)
		}
		cancel()
		_ = os.RemoveAll(pg.dir)
	}
	if bin.dir != "" {
		_ = os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

func startPostgres() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if url := os.Getenv("DATABASE_URL"); url != "" {
		if _, err := pgx.ParseConfig(url); err != nil {
			pg.err = fmt.Errorf("DATABASE_URL: %w", err)
			return
		}
		pg.adminDSN = url
		pg.dsnFor = func(db string) string { return withDatabase(url, db) }
	} else {
		dir, err := os.MkdirTemp("", "votewatch-test-pg-")
		if err != nil {
			pg.err = err
			return
		}
		pg.dir = dir
		// Socket only: parallel test binaries never clash on a port. No
		// fsync: a test cluster need not survive a power cut, only the
		// process crashes the tests inflict, which it does regardless.
		pg.cluster, pg.err = postgres.StartCluster(ctx, postgres.ClusterConfig{
			Dir: dir, SocketOnly: true,
			Settings: map[string]string{"fsync": "off", "max_connections": "200"},
		})
		if pg.err != nil {
			return
		}
		pg.adminDSN = pg.cluster.DSN()
		pg.dsnFor = pg.cluster.DSNFor
	}
	pg.err = createTemplate(ctx)
}

// createTemplate migrates a template database once; each test then gets a
// copy of it, which is much faster than migrating every time.
func createTemplate(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, pg.adminDSN)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("%s_%d", templateDB, os.Getpid())
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return fmt.Errorf("drop old template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	pool, err := postgres.Connect(ctx, pg.dsnFor(name), 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := postgres.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		return err
	}
	return nil
}

// DatabaseURL returns the URL of a new, migrated database for this test
// alone, dropped when the test ends.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	pg.once.Do(startPostgres)
	if pg.err != nil {
		tb.Fatalf("start test PostgreSQL: %v", pg.err)
	}
	ctx := context.Background()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), pg.seq.Add(1))
	admin, err := pgx.Connect(ctx, pg.adminDSN)
	if err != nil {
		tb.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer admin.Close(ctx)
	template := fmt.Sprintf("%s_%d", templateDB, os.Getpid())
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, pg.adminDSN)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return pg.dsnFor(name)
}

// Pool returns a pool to a new, migrated database for this test alone.
func Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := postgres.Connect(context.Background(), DatabaseURL(tb), 16)
	if err != nil {
		tb.Fatalf("connect to test database: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// withDatabase points a connection string (URL or key=value form) at db.
func withDatabase(dsn, db string) string {
	if u, err := neturl.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + db
		return u.String()
	}
	return dsn + " dbname=" + db
}

// EmptyDatabaseURL returns the URL of a new database with nothing of
// votewatch in it, on the test cluster, dropped when the test ends: another
// program's database (realtime_voting's, for import --from-seed-db).
func EmptyDatabaseURL(tb testing.TB) string {
	tb.Helper()
	pg.once.Do(startPostgres)
	if pg.err != nil {
		tb.Fatalf("start test PostgreSQL: %v", pg.err)
	}
	ctx := context.Background()
	name := fmt.Sprintf("empty_%d_%d", os.Getpid(), pg.seq.Add(1))
	admin, err := pgx.Connect(ctx, pg.adminDSN)
	if err != nil {
		tb.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0", name)); err != nil {
		tb.Fatalf("create empty test database: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, pg.adminDSN)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return pg.dsnFor(name)
}
