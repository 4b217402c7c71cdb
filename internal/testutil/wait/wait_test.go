package wait_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/internal/testutil/wait"
)

func TestUntilReportsWhetherTheConditionHeldInTime(t *testing.T) {
	t.Parallel()
	calls := 0
	if !wait.Until(time.Minute, func() bool { calls++; return calls == 3 }) {
		t.Fatal("Until gave up on a condition that held at the third look")
	}
	if calls != 3 {
		t.Errorf("cond called %d times, want 3: Until stops at the first true", calls)
	}
	calls = 0
	if wait.Until(0, func() bool { calls++; return false }) {
		t.Fatal("Until reported a condition that never held")
	}
	if calls != 1 {
		t.Errorf("with no time to wait, cond called %d times, want once", calls)
	}
}

// maxSleeps bounds the time.Sleep calls tests make (issue 22 §6): tests
// wait on signals and conditions, and a sleep stays only where the time
// slept is the fault under test (a link cut for 5 s, a member slow to
// rejoin), each saying so in a comment.
const maxSleeps = 6

// No test waits by sleeping: counted over every _test.go file of the
// module and the non-test helpers under internal/testutil, except this
// package's poll loop, which is what the others call instead.
func TestTestsSleepAtMostSixTimes(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	var sleeps []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "vendor" || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		helper := strings.HasPrefix(rel, filepath.Join("internal", "testutil")+string(filepath.Separator)) &&
			filepath.Dir(rel) != filepath.Join("internal", "testutil", "wait")
		if !strings.HasSuffix(path, ".go") || (!strings.HasSuffix(path, "_test.go") && !helper) {
			return nil
		}
		found, err := sleepCalls(path)
		for _, line := range found {
			sleeps = append(sleeps, fmt.Sprintf("%s:%d", rel, line))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sleeps) == 0 {
		// Not even the kept ones: the walk missed the tree.
		t.Fatalf("no time.Sleep found under %s: the scan is broken", root)
	}
	t.Logf("%d sleeps in tests: %s", len(sleeps), strings.Join(sleeps, ", "))
	if len(sleeps) > maxSleeps {
		t.Errorf("%d time.Sleep calls in tests, at most %d: wait on a signal or a condition (wait.For, testutil.Eventually) unless the sleep is the fault itself\n%s",
			len(sleeps), maxSleeps, strings.Join(sleeps, "\n"))
	}
}

// sleepCalls returns the lines of path that call time.Sleep.
func sleepCalls(path string) ([]int, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	timeName := ""
	for _, imp := range f.Imports {
		if imp.Path.Value == `"time"` {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	if timeName == "" {
		return nil, nil
	}
	var lines []int
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Sleep" {
			return true
		}
		// A call or a value (time.Sleep passed as a func) both count.
		if x, ok := sel.X.(*ast.Ident); ok && x.Name == timeName {
			lines = append(lines, fset.Position(sel.Pos()).Line)
		}
		return true
	})
	return lines, nil
}

// moduleRoot is the nearest directory above this package holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
