package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/postgres"
)

// loginAs creates a login role in group and returns a pool connected as it
// to the test's database.
func (p *pipeline) loginAs(t *testing.T, group string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s_%d", group, time.Now().UnixNano())
	if _, err := p.pool.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD 'pw-%s' IN ROLE %s`, name, name, group)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = p.pool.Exec(context.Background(), "DROP OWNED BY "+name+"; DROP ROLE "+name)
	})
	u, err := url.Parse(p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, "pw-"+name)
	pool, err := postgres.Connect(ctx, u.String(), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func wantDenied(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), sql)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: %v, want permission denied (42501)", sql, err)
	}
}

// The read API works as votewatch_reader, which can read the projection and
// change nothing; the projector works as votewatch_projector, which can
// write rows but create, alter or drop nothing; and the grants survive a
// replay's schema swap.
func TestLeastPrivilegeRoles(t *testing.T) {
	p := startSystem(t, system{partitions: 4})
	reader := p.loginAs(t, "votewatch_reader")
	writer := p.loginAs(t, "votewatch_projector")

	// The projector, connected as votewatch_projector.
	proj, err := newProjectorService(testLogger(), writer, p.kafka, ProjectorFlags{
		Group: "test-roles", BatchSize: 100, Writers: 2, Linger: time.Millisecond, SessionTimeout: 6 * time.Second,
	}, p.klog, metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), testLogger(), writer); err != nil {
		t.Fatalf("the projector's start-up migration check as votewatch_projector: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := proj.Run(ctx); err != nil {
			t.Errorf("projector: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)

	// The read API, connected as votewatch_reader.
	srv, err := newHTTPServer(testLogger(), "127.0.0.1:0", reader, p.klog.HighWatermarks, metrics.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = srv.Run(ctx) })
	readerAPI := &pipeline{api: "http://" + srv.Addr()}
	var s summaryResp
	if code := readerAPI.get(t, "/api/v1/summary", &s); code != 200 || s.VotesCast != e.counted {
		t.Errorf("summary as votewatch_reader: %d %+v", code, s)
	}
	if code := readerAPI.get(t, "/readyz", nil); code != 200 {
		t.Errorf("readyz as votewatch_reader: %d", code)
	}

	for _, sql := range []string{
		"INSERT INTO candidate_tallies (candidate_id, votes) VALUES ('c-x', 1)",
		"UPDATE candidate_tallies SET votes = votes + 1",
		"DELETE FROM ballots",
		"TRUNCATE ballots",
		"DROP TABLE ballots",
		"CREATE TABLE evil (x int)",
		"INSERT INTO intake.votes (vote_id, station, digest) VALUES (gen_random_uuid(), 's', '')",
	} {
		wantDenied(t, reader, sql)
	}
	for _, sql := range []string{
		"DROP TABLE ballots",
		"TRUNCATE ballots",
		"ALTER TABLE ballots ADD COLUMN x int",
		"CREATE TABLE evil (x int)",
		"DROP SCHEMA " + postgres.Schema + " CASCADE",
		"INSERT INTO intake.votes (vote_id, station, digest) VALUES (gen_random_uuid(), 's', '')",
	} {
		wantDenied(t, writer, sql)
	}

	// A replay swaps in a rebuilt schema; the roles keep their rights there.
	if code, out := p.cli(t, "replay"); code != 0 {
		t.Fatalf("replay = %d:\n%s", code, out)
	}
	var n int64
	if err := reader.QueryRow(context.Background(), "SELECT count(*) FROM ballots").Scan(&n); err != nil || n != e.counted {
		t.Errorf("reader after the swap: %d ballots, %v", n, err)
	}
	wantDenied(t, reader, "DELETE FROM ballots")
	p.produce(t, record("votes", e.voterIDs[235], vote(7777, e.voterIDs[235], "c-ada")))
	p.waitFor(t, e, 1)
}
