package systemtest

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// `votewatch audit` recounts the election from the log with the rules'
// Go specification and compares every table: it passes on an honest
// projection, fails naming the table on a consistent edit that `verify`
// cannot see, and refuses a log that lost its start.
func TestAuditRecountsTheElectionFromTheLog(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)

	code, out := p.cli(t, "audit")
	if code != 0 || !strings.Contains(out, "the projection equals the recount of the log in all 17 tables") {
		t.Fatalf("audit of an honest projection = %d:\n%s", code, out)
	}

	// Move one vote to another candidate of its contest in every tally
	// the internal checks compare, one stripe of each (a tally is the sum
	// of its stripes): verify passes, the recount does not. A ballot names
	// no candidate (00040), so verify cannot see whom it was for; audit,
	// with the log and the key, recounts each candidate.
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE TABLE moved AS SELECT t.candidate_id AS was, (SELECT min(c.candidate_id) FROM candidates c WHERE c.candidate_id <> t.candidate_id AND c.contest_id = k.contest_id) AS now, b.region, b.cast_at FROM ballots b JOIN timeline t ON t.minute = date_trunc('minute', b.cast_at) AND t.votes > 0 JOIN candidates k ON k.candidate_id = t.candidate_id AND k.contest_id = b.contest_id JOIN region_tallies r ON r.region = b.region AND r.candidate_id = t.candidate_id AND r.votes > 0 ORDER BY b.voter_id LIMIT 1`,
		`UPDATE candidate_tallies t SET votes = votes - 1 FROM moved m WHERE t.candidate_id = m.was AND t.stripe = (SELECT min(x.stripe) FROM candidate_tallies x WHERE x.candidate_id = m.was AND x.votes > 0)`,
		`UPDATE candidate_tallies t SET votes = votes + 1 FROM moved m WHERE t.candidate_id = m.now`,
		`UPDATE region_tallies t SET votes = votes - 1 FROM moved m WHERE t.candidate_id = m.was AND t.region = m.region AND t.stripe = (SELECT min(x.stripe) FROM region_tallies x WHERE x.candidate_id = m.was AND x.region = m.region AND x.votes > 0)`,
		`INSERT INTO region_tallies (region, candidate_id, votes) SELECT region, now, 1 FROM moved ON CONFLICT (region, candidate_id, stripe) DO UPDATE SET votes = region_tallies.votes + 1`,
		`UPDATE timeline t SET votes = votes - 1 FROM moved m WHERE t.candidate_id = m.was AND t.minute = date_trunc('minute', m.cast_at) AND t.stripe = (SELECT min(x.stripe) FROM timeline x WHERE x.candidate_id = m.was AND x.minute = date_trunc('minute', m.cast_at) AND x.votes > 0)`,
		`INSERT INTO timeline (minute, candidate_id, votes) SELECT date_trunc('minute', cast_at), now, 1 FROM moved ON CONFLICT (minute, candidate_id, stripe) DO UPDATE SET votes = timeline.votes + 1`,
		`DROP TABLE moved`,
	} {
		if _, err := p.pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if code, out := p.cli(t, "verify"); code != 0 {
		t.Logf("verify after the consistent edit = %d (it may see the demographics):\n%s", code, out)
	}
	code, out = p.cli(t, "audit")
	if code == 0 || !strings.Contains(out, "candidate_tallies: 2 rows the projection has and the log does not justify") || !strings.Contains(out, "projection only:") {
		t.Fatalf("audit after a vote was moved = %d, want 1 naming candidate_tallies:\n%s", code, out)
	}

	// Retention ate the start of a partition: both recount and rebuild
	// refuse, unless told to go on.
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "votes", Partition: 0, At: 1})
	if _, err := kadm.NewClient(cl).DeleteRecords(ctx, os); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"audit", "replay"} {
		code, out := p.cli(t, cmd)
		if code == 0 || !strings.Contains(out, "truncated") || !strings.Contains(out, "--allow-truncated-log") {
			t.Errorf("%s of a truncated log = %d, want a refusal naming --allow-truncated-log:\n%s", cmd, code, out)
		}
	}
	if code, out := p.cli(t, "audit", "--allow-truncated-log"); code == 0 || strings.Contains(out, "truncated log") && !strings.Contains(out, "DIFF") {
		t.Errorf("audit --allow-truncated-log = %d, want it to recount (and differ):\n%s", code, out)
	}
}
