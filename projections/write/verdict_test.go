package write_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
)

// The database stores decisions and never makes them (issue 22): no query
// names a rejection reason, so a rule change is an edit in domain alone.
// (Migrations may, in what they drop; queries are what runs.)
func TestNoQueryNamesARejectionReason(t *testing.T) {
	files, err := filepath.Glob("../../sql/queries/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no queries found: %v", err)
	}
	intake, err := filepath.Glob("../../sql/queries/*/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, intake...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range domain.RejectionReasons() {
			if regexp.MustCompile(`'` + r.String() + `'`).Match(b) {
				t.Errorf("%s names the rejection reason %q: decide in domain, store here", f, r)
			}
		}
	}
}

// Nor does any function of the migrated schema (vote_verdict was the
// rule's second copy, in SQL, until 00021).
func TestNoSQLFunctionNamesARejectionReason(t *testing.T) {
	pool := testutil.Pool(t)
	rows, err := pool.Query(context.Background(), `SELECT p.proname, p.prosrc FROM pg_proc p
		WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name, src string
		if err := rows.Scan(&name, &src); err != nil {
			t.Fatal(err)
		}
		n++
		for _, r := range domain.RejectionReasons() {
			if strings.Contains(src, "'"+r.String()+"'") {
				t.Errorf("function %s names the rejection reason %q", name, r)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no function read: the test looks in the wrong schema")
	}
}
