package systemtest

import (
	"context"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/internal/testutil"
)

// No relation pairs a voter or a vote_id with a choice (issue 21 §2), for
// any role, the owner included: read from the catalog, so a table or view
// a later migration adds is checked too. A relation that names a voter or
// a vote (a voter_id or vote_id column) has no column naming a candidate
// or a choice; the tallies name candidates and no voter or vote. A held
// vote keeps its message as the log holds it (sealed when the vote was),
// not its choice in a column of its own.
func TestNoRelationPairsAVoterWithAChoice(t *testing.T) {
	ctx := context.Background()
	pool := testutil.Pool(t)
	rows, err := pool.Query(ctx, `
		SELECT n.nspname || '.' || c.relname, array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname IN ($1, 'intake') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
		GROUP BY 1 ORDER BY 1`, postgres.Schema)
	if err != nil {
		t.Fatal(err)
	}
	columns := map[string][]string{}
	for rows.Next() {
		var rel string
		var cols []string
		if err := rows.Scan(&rel, &cols); err != nil {
			t.Fatal(err)
		}
		columns[rel] = cols
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(columns) < 20 {
		t.Fatalf("only %d relations found: is the test reading the right schemas?", len(columns))
	}
	names := func(cols []string, match func(string) bool) []string {
		var out []string
		for _, c := range cols {
			if match(c) {
				out = append(out, c)
			}
		}
		return out
	}
	identity := func(c string) bool { return c == "voter_id" || c == "vote_id" }
	choice := func(c string) bool { return strings.Contains(c, "candidate") || strings.Contains(c, "choice") }
	var identities, choices int
	for rel, cols := range columns {
		who, what := names(cols, identity), names(cols, choice)
		if len(who) > 0 {
			identities++
		}
		if len(what) > 0 {
			choices++
		}
		if len(who) > 0 && len(what) > 0 {
			t.Errorf("%s pairs %v with %v: a voter or a vote next to a choice", rel, who, what)
		}
	}
	// The check must have something to check: relations naming voters or
	// votes (ballots, rejections, held votes) and relations naming
	// candidates (the tallies).
	if identities < 3 || choices < 3 {
		t.Fatalf("%d relations name a voter or a vote and %d a candidate: is the test reading the right schemas?", identities, choices)
	}
	for _, rel := range []string{"ballots", "held_votes", "rejections"} {
		if _, ok := columns[postgres.Schema+"."+rel]; !ok {
			t.Errorf("%s not found in %s", rel, postgres.Schema)
		}
	}
}
