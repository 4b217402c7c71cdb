package systemtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/internal/testutil"
)

// relationRights is what one role may do to one relation: the table-wide
// privileges, and the columns granted one by one.
type relationRights struct {
	Select, Insert, Update, Delete bool
	// UpdateColumns is set when UPDATE is granted on some columns only.
	UpdateColumns []string
}

// rightsOf reads, from the catalog, what role may do to every relation
// (table or view) of the projection's schema and the intake's.
func rightsOf(t *testing.T, ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, role string) map[string]relationRights {
	t.Helper()
	rows, err := q.Query(ctx, `
		SELECT n.nspname || '.' || c.relname,
		       has_table_privilege($1, c.oid, 'SELECT') OR has_any_column_privilege($1, c.oid, 'SELECT'),
		       has_table_privilege($1, c.oid, 'INSERT') OR has_any_column_privilege($1, c.oid, 'INSERT'),
		       has_table_privilege($1, c.oid, 'UPDATE'),
		       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
		                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		                   AND NOT has_table_privilege($1, c.oid, 'UPDATE')
		                   AND has_column_privilege($1, c.oid, a.attnum, 'UPDATE')), '{}'),
		       has_table_privilege($1, c.oid, 'DELETE')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname IN ($2, 'intake') AND c.relkind IN ('r', 'v', 'm', 'p')
		ORDER BY 1`, role, postgres.Schema)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]relationRights{}
	for rows.Next() {
		var name string
		var r relationRights
		if err := rows.Scan(&name, &r.Select, &r.Insert, &r.Update, &r.UpdateColumns, &r.Delete); err != nil {
			t.Fatal(err)
		}
		out[name] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("only %d relations found: is the test reading the right schemas?", len(out))
	}
	return out
}

// Every login's rights on every relation, read from the catalog: a table
// a later migration adds is checked too, not only the tables a list of
// statements names.
//
//   - The projector never UPDATEs a decision (ballots, rejections, held
//     votes, registrations, schedules, dead letters, operator actions) nor
//     the transparency log (tree_*, checkpoints): those it only INSERTs.
//     Tallies it neither INSERTs nor UPDATEs: it adds to them through
//     add_tallies. The few columns it may UPDATE are named here.
//   - The reader cannot enumerate vote_ids: neither ballot_statuses nor
//     the log's epochs and counts, and nothing that names a voter or a
//     single vote.
//   - Nobody but the projector writes the projection.
func TestEveryLoginsRightsOnEveryRelation(t *testing.T) {
	ctx := context.Background()
	pool := testutil.Pool(t)
	s := postgres.Schema + "."

	// What the projector may UPDATE, column by column, and why.
	projectorUpdates := map[string][]string{
		// Progress, not a decision: each partition's next offset only moves
		// forward (AdvanceOffsets' GREATEST).
		s + "applied_offsets": {"batches", "last_event_at", "next_offset", "updated_at"},
		// A candidate's registration may be amended, but not its contest
		// (which votes count for it).
		s + "candidates": {"biography", "name", "party", "photo_url", "platform"},
		// The register's size per region, counted as voters register.
		s + "regions": {"registered_voters"},
		// A station's close report.
		s + "stations": {"closed_at"},
		// The releaser's steps towards the exact counts (00028, 00029):
		// what is published, never a decision.
		s + "released_cells": {"votes"},
		s + "released_steps": {"votes"},
		s + "release_state":  {"min_cell", "polls_closed", "released_at", "releases"},
	}
	tallies := []string{"candidate_tallies", "region_tallies", "rejection_tallies", "timeline", "demographic_tallies",
		"station_tallies", "contest_turnout"}
	decisions := []string{"ballots", "rejections", "held_votes", "log_epochs", "log_leaves", "log_hashes", "log_counts",
		"log_checkpoints", "log_cosignatures", "dead_letters",
		"refused_registrations", "registration_closures", "vote_schedules", "operator_actions", "voters", "contests"}
	projector := rightsOf(t, ctx, pool, "votewatch_projector")
	for rel, r := range projector {
		want, ok := projectorUpdates[rel]
		switch {
		case r.Update:
			t.Errorf("votewatch_projector may UPDATE every column of %s", rel)
		case !ok && len(r.UpdateColumns) > 0:
			t.Errorf("votewatch_projector may UPDATE %s (%v)", rel, r.UpdateColumns)
		case ok && !slices.Equal(r.UpdateColumns, want):
			t.Errorf("votewatch_projector may UPDATE %s's columns %v, want %v", rel, r.UpdateColumns, want)
		}
		if r.Delete && rel != s+"held_votes" {
			t.Errorf("votewatch_projector may DELETE from %s", rel)
		}
	}
	for _, rel := range tallies {
		if r := projector[s+rel]; r.Insert || r.Update || len(r.UpdateColumns) > 0 || !r.Select {
			t.Errorf("votewatch_projector's rights on the tally %s: %+v, want SELECT only (it adds through functions)", rel, r)
		}
	}
	// A rotation of the checkpoint key is the owner's to record (keys
	// rotate): with INSERT the projector could authorize a key of its own.
	if r := projector[s+"log_key_rotations"]; r.Insert || r.Update || r.Delete || !r.Select {
		t.Errorf("votewatch_projector's rights on log_key_rotations: %+v, want SELECT only", r)
	}
	for _, rel := range decisions {
		if r := projector[s+rel]; !r.Insert || !r.Select || r.Update || len(r.UpdateColumns) > 0 {
			t.Errorf("votewatch_projector's rights on %s: %+v, want SELECT and INSERT, no UPDATE", rel, r)
		}
	}

	// The reader: SELECT on what the API serves, and nothing that lists
	// single votes or names a voter.
	readerMustNotSelect := []string{"ballots", "rejections", "held_votes", "voters", "dead_letters",
		"ballot_statuses", "log_epochs", "log_counts", "log_key_rotations"}
	reader := rightsOf(t, ctx, pool, "votewatch_reader")
	for rel, r := range reader {
		if r.Insert || r.Update || len(r.UpdateColumns) > 0 || r.Delete {
			t.Errorf("votewatch_reader may write %s: %+v", rel, r)
		}
		if strings.HasPrefix(rel, "intake.") && rel != "intake.goose_db_version" && r.Select {
			t.Errorf("votewatch_reader may read %s", rel)
		}
	}
	for _, rel := range readerMustNotSelect {
		if r, ok := reader[s+rel]; !ok || r.Select {
			t.Errorf("votewatch_reader may read %s (or it is gone: %v)", rel, !ok)
		}
	}

	// The intake writes its own schema only.
	intake := rightsOf(t, ctx, pool, "votewatch_intake")
	for rel, r := range intake {
		if strings.HasPrefix(rel, s) && (r.Insert || r.Update || len(r.UpdateColumns) > 0 || r.Delete ||
			(r.Select && rel != s+"goose_db_version")) {
			t.Errorf("votewatch_intake's rights on %s: %+v", rel, r)
		}
	}

	if t.Failed() || testing.Verbose() {
		t.Log("\n" + rightsTable(map[string]map[string]relationRights{"reader": reader, "projector": projector, "intake": intake}))
	}
}

// rightsTable prints the rights matrix, one relation a line.
func rightsTable(byRole map[string]map[string]relationRights) string {
	var rels []string
	for rel := range byRole["projector"] {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	var b strings.Builder
	for _, rel := range rels {
		fmt.Fprintf(&b, "%-40s", rel)
		for _, role := range []string{"reader", "projector", "intake"} {
			r := byRole[role][rel]
			flags := []byte("----")
			for i, on := range []bool{r.Select, r.Insert, r.Update || len(r.UpdateColumns) > 0, r.Delete} {
				if on {
					flags[i] = "SIUD"[i]
				}
			}
			fmt.Fprintf(&b, " %s:%s", role, flags)
			if len(r.UpdateColumns) > 0 {
				fmt.Fprintf(&b, "%v", r.UpdateColumns)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// add_tallies, the projector's only way to change a tally, only ever adds:
// a count of zero, a negative or a missing one is refused, so the login
// cannot take votes away through it either; nor can it be pointed at
// other tables by the caller's search_path.
func TestAddTalliesOnlyAdds(t *testing.T) {
	ctx := context.Background()
	pool := testutil.Pool(t)
	call := func(counts string) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL ROLE votewatch_projector"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SELECT add_tallies(3::smallint, '{North,North}', '{c-ada,c-ada}', '{default,default}',
				ARRAY[now(), now()], $1::bigint[], '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')`, counts)
			return err
		})
	}
	for _, counts := range []string{"{1,-1}", "{0,1}", "{1,NULL}", "{1}"} {
		err := call(counts)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "23514" && pgErr.Code != "23502") {
			t.Errorf("add_tallies with counts %s: %v, want a check or not-null violation", counts, err)
		}
	}
	if err := call("{2,3}"); err != nil {
		t.Fatal(err)
	}
	var votes, stripe int64
	if err := pool.QueryRow(ctx, "SELECT votes, stripe FROM candidate_tallies WHERE candidate_id = 'c-ada'").Scan(&votes, &stripe); err != nil {
		t.Fatal(err)
	}
	if votes != 5 || stripe != 3 {
		t.Errorf("candidate_tallies: %d votes in stripe %d, want 5 in stripe 3", votes, stripe)
	}
}
