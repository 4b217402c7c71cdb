package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/votewatch/votewatch/internal/testutil"
)

// BenchmarkDashboardRead measures GET /api/v1/dashboard over seededAPI's
// election, one client at a time, against a real PostgreSQL: read for the
// request (one REPEATABLE READ transaction), and served from the snapshot
// cache (what votewatch serve does).
//
//	go test -run '^$' -bench DashboardRead -benchtime 2s ./handlers
func BenchmarkDashboardRead(b *testing.B) {
	b.Run("per-request", func(b *testing.B) {
		benchGet(b, seededAPI(b, func(context.Context) error { return nil }))
	})
	b.Run("cached", func(b *testing.B) {
		pool := testutil.Pool(b)
		seedElection(b, pool)
		srv := snapshotAPI(b, pool)
		get(b, srv.URL+"/api/v1/dashboard")
		benchGet(b, srv)
	})
}

func benchGet(b *testing.B, srv *httptest.Server) {
	client := srv.Client()
	for b.Loop() {
		resp, err := client.Get(srv.URL + "/api/v1/dashboard")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET /api/v1/dashboard: %s", resp.Status)
		}
	}
}
