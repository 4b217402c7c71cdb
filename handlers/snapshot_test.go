package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/read"
)

// snapshotAPI serves the read API from a running snapshot cache over pool.
func snapshotAPI(t testing.TB, pool *pgxpool.Pool) *httptest.Server {
	t.Helper()
	results, err := read.NewResults(pool)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	snaps, err := handlers.NewSnapshots(results, handlers.SnapshotConfig{Poll: 2 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	api, err := handlers.NewAPI(results, func(context.Context) error { return nil }, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	api.ServeFromSnapshots(snaps)
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { snaps.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); srv.Close() })
	return srv
}

func get(t testing.TB, url string) (string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return resp.Header.Get("ETag"), body
}

// Every cached route answers from the same snapshot: one ETag, and the
// dashboard's parts are byte for byte the other routes' answers.
func TestSnapshotRoutesShareOneState(t *testing.T) {
	t.Parallel()
	pool := testutil.Pool(t)
	api := snapshotAPI(t, pool)
	// As the projector does: the change and its applied offset together,
	// so the watermark moves (a change that did not move it could be
	// missed by a snapshot built just before it).
	if _, err := pool.Exec(context.Background(), `INSERT INTO candidates (candidate_id, name, party) VALUES ('c-ada', 'Ada', 'Civic');
		INSERT INTO applied_offsets (topic, partition, next_offset) VALUES ('candidates', 0, 1)`); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the candidate in the snapshot", func() (bool, string) {
		_, body := get(t, api.URL+"/api/v1/candidates")
		return bytes.Contains(body, []byte("c-ada")), string(body)
	})
	dashTag, dash := get(t, api.URL+"/api/v1/dashboard")
	var d struct {
		Summary    json.RawMessage `json:"summary"`
		Candidates json.RawMessage `json:"candidates"`
		Regions    json.RawMessage `json:"regions"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatal(err)
	}
	for _, route := range []struct{ path, want string }{
		{"/api/v1/summary", string(d.Summary)},
		{"/api/v1/candidates", `{"candidates":` + string(d.Candidates) + "}"},
		{"/api/v1/regions", `{"regions":` + string(d.Regions) + "}"},
	} {
		tag, body := get(t, api.URL+route.path)
		if tag != dashTag {
			t.Errorf("GET %s: ETag %s, the dashboard's %s", route.path, tag, dashTag)
		}
		want := route.want
		if got := strings.TrimSpace(string(body)); got != want {
			t.Errorf("GET %s:\n%s\nthe dashboard's:\n%s", route.path, got, want)
		}
	}
}

// A batch that began before another but commits after it leaves the newest
// updated_at where it was; the snapshot must still pick it up.
func TestSnapshotSeesABatchThatCommitsOutOfOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testutil.Pool(t)
	api := snapshotAPI(t, pool)
	first, _ := get(t, api.URL+"/api/v1/summary")

	early, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback(ctx)
	if _, err := early.Exec(ctx, `INSERT INTO candidates (candidate_id, name, party) VALUES ('c-late', 'Late', 'Civic')`); err != nil {
		t.Fatal(err)
	}
	if _, err := early.Exec(ctx, `INSERT INTO applied_offsets (topic, partition, next_offset, updated_at) VALUES ('candidates', 0, 1, now())`); err != nil {
		t.Fatal(err)
	}
	// The later batch began later: its updated_at is the newest.
	if _, err := pool.Exec(ctx, `INSERT INTO applied_offsets (topic, partition, next_offset, updated_at) VALUES ('votes', 0, 1, now() + interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the later batch in the snapshot", func() (bool, string) {
		tag, _ := get(t, api.URL+"/api/v1/summary")
		return tag != first, tag
	})
	if err := early.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the earlier batch in the snapshot", func() (bool, string) {
		_, body := get(t, api.URL+"/api/v1/candidates")
		return bytes.Contains(body, []byte("c-late")), string(body)
	})
}
