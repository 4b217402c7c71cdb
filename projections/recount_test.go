package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/audit"
	"github.com/votewatch/votewatch/projections/write"
)

// recounted projects a random election live, as the property test does,
// and returns its pool and log.
func recounted(t *testing.T, seed uint64) (*pgxpool.Pool, *testLog) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0xa0d1))
	log := randomLog(rng)
	pool := testutil.Pool(t)
	store, err := write.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, rng, store, log)
	return pool, log
}

func recount(t *testing.T, pool *pgxpool.Pool, log *testLog) audit.RecountReport {
	t.Helper()
	rep, err := audit.Recount(context.Background(), pool, memLog{log}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The recount, an implementation of the rules independent of the SQL,
// agrees with the live projection over random elections.
func TestRecountAgreesWithTheProjection(t *testing.T) {
	t.Parallel()
	for seed := range uint64(12) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			pool, log := recounted(t, seed)
			rep := recount(t, pool, log)
			if d := rep.Differences(); len(d) > 0 {
				t.Fatalf("recount differs (log:\n%s)\n%s", log, audit.FormatRecount(d))
			}
			if rep.Compared != 17 { // misrouted_votes since 00021
				t.Errorf("compared %d tables, want 17", rep.Compared)
			}
		})
	}
}

// Edits an attacker with write access to the database could make, each
// keeping `verify`'s internal checks happy, are caught by the recount.
func TestRecountCatchesAnEditedProjection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  []string
		table string
	}{
		// A ballot names no candidate (00040): the edit moves one vote
		// between two candidates of its contest in every tally `verify`
		// compares; only the recount from the log and the key sees it.
		{"one vote moved to another candidate, every tally adjusted", []string{
			`CREATE TEMP TABLE moved AS SELECT t.candidate_id AS was, (SELECT min(c.candidate_id) FROM candidates c WHERE c.candidate_id <> t.candidate_id AND c.contest_id = k.contest_id) AS now, b.region, b.cast_at FROM ballots b JOIN timeline t ON t.minute = date_trunc('minute', b.cast_at) AND t.votes > 0 JOIN candidates k ON k.candidate_id = t.candidate_id AND k.contest_id = b.contest_id JOIN region_tallies r ON r.region = b.region AND r.candidate_id = t.candidate_id AND r.votes > 0 ORDER BY b.voter_id LIMIT 1`,
			`UPDATE candidate_tallies t SET votes = votes - 1 FROM moved m WHERE t.candidate_id = m.was AND t.stripe = (SELECT min(x.stripe) FROM candidate_tallies x WHERE x.candidate_id = m.was AND x.votes > 0)`,
			`INSERT INTO candidate_tallies (candidate_id, votes) SELECT now, 1 FROM moved ON CONFLICT (candidate_id, stripe) DO UPDATE SET votes = candidate_tallies.votes + 1`,
			`UPDATE region_tallies t SET votes = votes - 1 FROM moved m WHERE t.candidate_id = m.was AND t.region = m.region AND t.stripe = (SELECT min(x.stripe) FROM region_tallies x WHERE x.candidate_id = m.was AND x.region = m.region AND x.votes > 0)`,
			`INSERT INTO region_tallies (region, candidate_id, votes) SELECT region, now, 1 FROM moved ON CONFLICT (region, candidate_id, stripe) DO UPDATE SET votes = region_tallies.votes + 1`,
			`UPDATE timeline t SET votes = votes - 1 FROM moved m WHERE t.candidate_id = m.was AND t.minute = date_trunc('minute', m.cast_at) AND t.stripe = (SELECT min(x.stripe) FROM timeline x WHERE x.candidate_id = m.was AND x.minute = date_trunc('minute', m.cast_at) AND x.votes > 0)`,
			`INSERT INTO timeline (minute, candidate_id, votes) SELECT date_trunc('minute', cast_at), now, 1 FROM moved ON CONFLICT (minute, candidate_id, stripe) DO UPDATE SET votes = timeline.votes + 1`,
		}, "candidate_tallies"},
		{"a ballot deleted", []string{
			`DELETE FROM ballots WHERE voter_id = (SELECT min(voter_id) FROM ballots)`,
		}, "ballots"},
		{"a ballot inserted", []string{
			`INSERT INTO ballots (voter_id, vote_id, region, cast_at) VALUES ('stuffed', gen_random_uuid(), 'North', now())`,
		}, "ballots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The first seed whose election counts a few ballots.
			var pool *pgxpool.Pool
			var log *testLog
			for seed := uint64(0); ; seed++ {
				if seed == 20 {
					t.Fatal("no seed below 20 counts a ballot")
				}
				pool, log = recounted(t, seed)
				var ballots int
				if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM ballots").Scan(&ballots); err != nil {
					t.Fatal(err)
				}
				if ballots >= 2 {
					break
				}
			}
			if d := recount(t, pool, log).Differences(); len(d) > 0 {
				t.Fatalf("differs before the edit:\n%s", audit.FormatRecount(d))
			}
			conn, err := pool.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, sql := range tt.edit {
				if _, err := conn.Exec(context.Background(), sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			conn.Release()
			diffs := recount(t, pool, log).Differences()
			found := false
			for _, d := range diffs {
				found = found || d.Table == tt.table
			}
			if !found {
				t.Fatalf("the recount missed the edit: %s", audit.FormatRecount(diffs))
			}
			if out := audit.FormatRecount(diffs); !strings.Contains(out, tt.table) {
				t.Errorf("the report does not name %s:\n%s", tt.table, out)
			}
		})
	}
}

func TestRecountRefusesATruncatedLog(t *testing.T) {
	t.Parallel()
	_, log := recounted(t, 1)
	if err := audit.CheckLogComplete(context.Background(), memLog{log}); err != nil {
		t.Fatalf("a whole log: %v", err)
	}
	truncated := truncatedLog{memLog{log}}
	if err := audit.CheckLogComplete(context.Background(), truncated); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a log starting at offset 1: %v, want ErrTruncatedLog", err)
	}
}

type truncatedLog struct{ memLog }

func (l truncatedLog) LowWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	low, err := l.memLog.LowWatermarks(ctx, topic)
	for p := range low {
		low[p] = 1
	}
	return low, err
}
