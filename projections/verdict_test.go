package projections_test

import (
	"context"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/internal/testutil"
)

// vote_verdict is the rule every vote statement asks, once per vote: the
// planner must inline it (one expression, no call per row), or the live
// path pays a function call per vote. A STRICT, VOLATILE or table-reading
// rewrite of it would fail here before it showed in the bench.
func TestVoteVerdictIsInlined(t *testing.T) {
	pool := testutil.Pool(t)
	rows, err := pool.Query(context.Background(), `EXPLAIN VERBOSE
		SELECT vote_verdict(false, h.contest_id, v.region, h.station_region, k.regions, c.contest_id, false)
		FROM held_votes h
		LEFT JOIN voters v ON v.voter_id = h.voter_id
		LEFT JOIN candidates c ON c.candidate_id = h.candidate_id
		LEFT JOIN contests k ON k.contest_id = h.contest_id`)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if p := plan.String(); strings.Contains(p, "vote_verdict") || !strings.Contains(p, "CASE WHEN") {
		t.Errorf("vote_verdict is called, not inlined:\n%s", p)
	}
}
