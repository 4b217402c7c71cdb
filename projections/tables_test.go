package projections_test

import (
	"context"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
)

// The registry is the one list of the projection's tables: each named
// once, and each either compared row by row or saying how else it is
// checked.
func TestEveryTableOfTheRegistrySaysHowItIsChecked(t *testing.T) {
	seen := map[string]bool{}
	for _, tb := range projections.Tables() {
		if seen[tb.Name] {
			t.Errorf("%s is in the registry twice", tb.Name)
		}
		seen[tb.Name] = true
		if tb.Compare == "" && tb.Why == "" {
			t.Errorf("%s is neither compared nor says why not", tb.Name)
		}
		if tb.Recount && tb.Compare == "" {
			t.Errorf("%s is recounted but replay does not compare it", tb.Name)
		}
	}
}

// A table a migration adds without adding it to the registry would escape
// replay's comparison and the recount; the self-check (votewatch verify)
// names it, and a registry naming a table the schema lacks fails as well.
func TestTheSelfCheckFailsOnATableOutsideTheRegistry(t *testing.T) {
	ctx := context.Background()
	pool := testutil.Pool(t)
	results, err := read.NewResults(pool)
	if err != nil {
		t.Fatal(err)
	}
	registry := func() read.Check {
		t.Helper()
		checks, err := results.SelfCheck(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			if strings.Contains(c.Name, "table registry") {
				return c
			}
		}
		t.Fatal("the self-check has no registry check")
		return read.Check{}
	}
	if c := registry(); !c.OK {
		t.Fatalf("a freshly migrated projection: %s", c.Detail)
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE late_addition (id int)"); err != nil {
		t.Fatal(err)
	}
	if c := registry(); c.OK || !strings.Contains(c.Detail, "not in the registry: late_addition") {
		t.Errorf("with a table outside the registry: ok %v, %q; want it named", c.OK, c.Detail)
	}
	if _, err := pool.Exec(ctx, "DROP TABLE late_addition; DROP TABLE misrouted_votes"); err != nil {
		t.Fatal(err)
	}
	if c := registry(); c.OK || !strings.Contains(c.Detail, "not in the schema: misrouted_votes") {
		t.Errorf("with a registry table dropped: ok %v, %q; want it named", c.OK, c.Detail)
	}
}
