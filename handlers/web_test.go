package handlers_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/read"
)

// The page's script is ES modules with no build step: each is served from
// the binary as JavaScript (browsers refuse a module of another type) under
// the page's policy, and every import names a module that is served.
func TestDashboardModulesAreServed(t *testing.T) {
	t.Parallel()
	results, err := read.NewResults(testutil.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	snaps, err := handlers.NewSnapshots(results, handlers.SnapshotConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := handlers.NewStream(snaps, handlers.StreamConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	handlers.RegisterDashboard(mux, stream)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	modules, err := filepath.Glob(filepath.Join("web", "*.js"))
	if err != nil || len(modules) < 2 {
		t.Fatalf("modules in web/: %v (%v)", modules, err)
	}
	imports := regexp.MustCompile(`(?m)^import .* from "\./([a-z]+\.js)";$`)
	served := map[string]bool{}
	for _, path := range modules {
		name := filepath.Base(path)
		resp, err := http.Get(srv.URL + "/assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("/assets/%s: %s, Content-Type %q; want 200 and JavaScript", name, resp.Status, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("/assets/%s: CSP %q", name, csp)
		}
		onDisk, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != string(onDisk) {
			t.Errorf("/assets/%s is not the embedded file", name)
		}
		served[name] = true
	}
	for _, path := range modules {
		src, _ := os.ReadFile(path)
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			if !served[m[1]] {
				t.Errorf("%s imports %s, which is not served", filepath.Base(path), m[1])
			}
		}
	}
	page, err := os.ReadFile(filepath.Join("web", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<script type="module" src="/assets/app.js">`) {
		t.Error("index.html does not load app.js as a module")
	}
}
