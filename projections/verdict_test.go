package projections_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// Only the projector decides votes: the read API's role may not even ask
// vote_verdict (it reads no table, but nothing outside the projector needs
// it), the projector's may.
func TestOnlyTheProjectorMayAskVoteVerdict(t *testing.T) {
	pool := testutil.Pool(t)
	ctx := context.Background()
	for role, allowed := range map[string]bool{"votewatch_reader": false, "votewatch_intake": false, "votewatch_projector": true} {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+role); err != nil {
				return err
			}
			// Planned afresh under the role: a statement prepared under
			// another role on the same connection would carry that role's
			// inlined plan (PostgreSQL checks an inlined function's
			// privilege when planning).
			var verdict string
			return tx.QueryRow(ctx, "SELECT vote_verdict(true, 'default', 'North', NULL, NULL, 'default', false)", pgx.QueryExecModeSimpleProtocol).Scan(&verdict)
		})
		var pgErr *pgconn.PgError
		switch {
		case allowed && err != nil:
			t.Errorf("%s: %v, want vote_verdict allowed", role, err)
		case !allowed && (!errors.As(err, &pgErr) || pgErr.Code != "42501"):
			t.Errorf("%s: %v, want permission denied (42501)", role, err)
		}
	}
}
