package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/outbox"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/read"
)

// What a failing dependency says (addresses, users, file paths, SQL) is for
// the logs: no response body carries it, 5xx and /readyz included.
func TestNoErrorBodyCarriesInternalText(t *testing.T) {
	t.Parallel()
	internal := "dial tcp 10.9.8.7:5432: password authentication failed for user \"votewatch_api\" (/var/run/postgresql)"
	srv := seededAPI(t, func(context.Context) error { return errors.New(internal) })
	leaks := []string{"10.9.8.7", "votewatch_api", "password", "/var/run", "dial tcp"}

	code, body, raw := fetch(t, http.MethodGet, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("readyz: %d, want 503: %s", code, raw)
	}
	if e, _ := body["error"].(map[string]any); e["code"] != "not_ready" {
		t.Errorf("readyz body %s, want code not_ready", raw)
	}
	assertNoLeak(t, "readyz", raw, leaks)

	// The read API and the intake over a database that has gone away.
	pool := testutil.Pool(t)
	results, err := read.NewResults(pool)
	if err != nil {
		t.Fatal(err)
	}
	api, err := handlers.NewAPI(results, func(context.Context) error { return nil }, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	box, err := outbox.New(pool, watermill.NopLogger{}, outbox.Config{DigestKey: bytes.Repeat([]byte{7}, outbox.MinDigestKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	token := "errors-test-station-token"
	region, _ := domain.NewRegion("North")
	intake, err := handlers.NewIntake(box, handlers.IntakeConfig{Stations: []handlers.Station{{Name: "s-1", Token: token, Region: region}}, Rate: 100}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	intake.Register(mux)
	down := httptest.NewServer(mux)
	t.Cleanup(down.Close)
	pool.Close()
	leaks = append(leaks, "closed pool", "pool", "sql", "read summary")
	for _, path := range []string{"/api/v1/summary", "/api/v1/candidates", "/api/v1/regions", "/api/v1/regions/North",
		"/api/v1/dashboard", "/api/v1/status", "/api/v1/timeline"} {
		code, _, raw := fetch(t, http.MethodGet, down.URL+path)
		if code < 500 {
			t.Errorf("%s with the database gone: %d, want 5xx", path, code)
		}
		assertNoLeak(t, path, raw, leaks)
	}
	req, _ := http.NewRequest(http.MethodPost, down.URL+"/api/v1/votes", strings.NewReader(
		`{"vote_id":"0193a1c2-7d4e-7f00-8000-000000000001","voter_id":"v-1","candidate_id":"c-ada","cast_at":"2026-11-03T15:04:05Z"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	posted, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("intake with the database gone: %d, want 503: %s", resp.StatusCode, posted)
	}
	assertNoLeak(t, "POST /api/v1/votes", string(posted), leaks)
}

func assertNoLeak(t *testing.T, what, body string, leaks []string) {
	t.Helper()
	for _, s := range leaks {
		if strings.Contains(body, s) {
			t.Errorf("%s: the body carries internal text %q: %s", what, s, body)
		}
	}
}
