package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/openapitest"
)

// checkErrorAnswer fails unless a response to bad input is a 4xx JSON
// error with a code and a message (never a 5xx, never plain text).
func checkErrorAnswer(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Fatalf("%s: %d %s", what, resp.StatusCode, raw)
	}
	if resp.StatusCode < 400 {
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: %d with Content-Type %q: %s", what, resp.StatusCode, ct, raw)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("%s: %d without a JSON error naming the problem: %s", what, resp.StatusCode, raw)
	}
}

// Every read route, with any path segment and query string: a 2xx or a
// 4xx JSON error, never a 5xx, and always an answer the OpenAPI document
// allows.
func FuzzReadAPIInput(f *testing.F) {
	srv := seededAPI(f, func(context.Context) error { return nil })
	contract := openapitest.Load(f)
	routes := []string{"/api/v1/summary", "/api/v1/candidates", "/api/v1/regions", "/api/v1/regions/", "/api/v1/timeline",
		"/api/v1/results.csv", "/api/v1/dashboard", "/api/v1/status", "/api/v1/nope"}
	f.Add(uint8(3), "North", "")
	f.Add(uint8(4), "", "minutes=60")
	f.Add(uint8(4), "", "minutes=-1")
	f.Add(uint8(4), "", "minutes=99999999999999999999")
	f.Add(uint8(2), "", "page=-1&size=100000")
	f.Add(uint8(3), "'; DROP TABLE ballots; --", "")
	f.Add(uint8(3), "%00\u202e", "x=%zz")
	f.Add(uint8(3), ".", "#")
	// Not following redirects: net/http's mux redirects unclean paths
	// (/regions/. → /regions) before any handler, and the answer at the
	// end belongs to another route than the one asked.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Fuzz(func(t *testing.T, route uint8, segment, query string) {
		path := routes[int(route)%len(routes)]
		if strings.HasSuffix(path, "/") {
			path += url.PathEscape(segment)
		}
		u, err := url.Parse(srv.URL + path)
		if err != nil {
			return
		}
		if strings.ContainsFunc(query, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return // not a valid request target: net/http refuses it before any handler
		}
		u.RawQuery = query
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			return // the client refused to send it
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusMovedPermanently {
			return // the mux cleaning the path, before any handler
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		if err := contract.CheckResponse(req, nil, resp.StatusCode, resp.Header, raw); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(path, ".csv") && resp.StatusCode == http.StatusOK {
			return
		}
		checkErrorAnswer(t, u.String(), resp)
	})
}

// acceptAll stores nothing: the intake's storage is tested against
// PostgreSQL elsewhere; this fuzzes what stands before it.
type acceptAll struct{}

func (acceptAll) Accept(_ context.Context, _ string, votes []domain.VoteCast) (int, error) {
	return len(votes), nil
}

func (acceptAll) CloseStation(context.Context, string, domain.StationReported) (bool, error) {
	return true, nil
}

// The intake API with any body and content type: 202, or a 4xx JSON error
// naming the problem, and always an answer the OpenAPI document allows.
var fuzzRegion, _ = domain.NewRegion("North")

func FuzzIntakeBody(f *testing.F) {
	contract := openapitest.Load(f)
	in, err := handlers.NewIntake(acceptAll{}, handlers.IntakeConfig{
		Stations: []handlers.Station{{Name: "s", Token: "fuzz-station-token-001", Region: fuzzRegion}}, Rate: 1e9, Burst: 1e6,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	good := `{"vote_id":"01900000-0000-7000-8000-000000000001","voter_id":"v-1","candidate_id":"c-ada","cast_at":"2026-11-03T15:04:05Z"}`
	f.Add(false, "application/json", good)
	f.Add(true, "application/json", `{"votes":[`+good+`,`+good+`]}`)
	f.Add(true, "application/json", `{"votes":[7, null, "x", {}]}`)
	f.Add(false, "application/json; charset=utf-8", `{"vote_id":1e400}`)
	f.Add(false, "text/plain", good)
	f.Add(true, "application/json", `{"votes":null,"votes":[]}`)
	f.Fuzz(func(t *testing.T, batch bool, contentType, body string) {
		path := "/api/v1/votes"
		if batch {
			path += ":batch"
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer fuzz-station-token-000")
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		resp := rec.Result()
		if err := contract.CheckResponse(req, []byte(body), rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			checkErrorAnswer(t, path+" "+body, resp)
		}
	})
}
