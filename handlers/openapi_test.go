package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/openapitest"
)

// routeRecorder is a mux that lists the patterns registered on it.
type routeRecorder struct {
	*http.ServeMux
	patterns []string
}

func (r *routeRecorder) Handle(pattern string, h http.Handler) {
	r.patterns = append(r.patterns, pattern)
	r.ServeMux.Handle(pattern, h)
}

func (r *routeRecorder) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	r.patterns = append(r.patterns, pattern)
	r.ServeMux.HandleFunc(pattern, h)
}

// notInTheAPI are the routes the OpenAPI document leaves out, and why.
var notInTheAPI = map[string]string{
	"GET /{$}":     "the dashboard page (HTML)",
	"GET /assets/": "the dashboard's scripts and styles",
	"/api/":        "the catch-all that answers unknown API paths with a JSON 404",
	"/log/tile/":   "the tlog-tiles subtree: a tile index holds slashes (c2sp.org/tlog-tiles), which no one-segment pattern matches; documented as tileDocs",
}

// tileDocs are the document's paths for the tiles, which the subtree
// /log/tile/ serves.
var tileDocs = map[string]bool{"/log/tile/{level}/{index}": true, "/log/tile/entries/{index}": true}

// Every route any handler registers is in the OpenAPI document, with the
// method it answers, and the document has no route that nothing serves.
// The routes come from the registrations themselves, so a new one fails
// here until it is documented.
func TestEveryRouteIsInTheOpenAPIDocument(t *testing.T) {
	t.Parallel()
	results := seededResults(t)
	log := slog.New(slog.DiscardHandler)
	api, err := handlers.NewAPI(results, func(context.Context) error { return nil }, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := handlers.NewSnapshots(results, handlers.SnapshotConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := handlers.NewStream(snaps, handlers.StreamConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	intake, err := handlers.NewIntake(acceptAll{}, handlers.IntakeConfig{
		Stations: []handlers.Station{{Name: "s", Token: "route-test-token-0001", Region: fuzzRegion}}, Rate: 1,
		Report: func(context.Context, domain.StationReported) error { return nil },
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	mux := &routeRecorder{ServeMux: http.NewServeMux()}
	api.Register(mux)
	handlers.RegisterDashboard(mux, stream)
	intake.Register(mux)
	tally, err := domain.GenerateTallyKey()
	if err != nil {
		t.Fatal(err)
	}
	handlers.RegisterTallyKey(mux, tally.Public(), false, log)

	doc := openapitest.Load(t).Doc()
	served := map[string]bool{}
	for _, pattern := range mux.patterns {
		if _, ok := notInTheAPI[pattern]; ok {
			continue
		}
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		served[path] = true
		item := doc.Paths.Value(path)
		switch {
		case item == nil:
			t.Errorf("route %q is not in handlers/openapi.yaml", pattern)
		case method == "" && len(item.Operations()) == 0:
			t.Errorf("route %q: the document has the path but no operation", pattern)
		case method != "" && item.GetOperation(method) == nil:
			t.Errorf("route %q: the document has no %s operation on %s", pattern, method, path)
		}
	}
	for path := range doc.Paths.Map() {
		if !served[path] && !tileDocs[path] {
			t.Errorf("the document has %s, which nothing serves", path)
		}
	}
}

// GET /api/v1/openapi.json serves the embedded YAML document, as JSON.
func TestOpenAPIDocumentIsServedAsJSON(t *testing.T) {
	t.Parallel()
	srv := seededAPI(t, func(context.Context) error { return nil })
	resp, err := contractClient(t).Get(srv.URL + handlers.OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served any
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	var written any
	if err := yaml.Unmarshal(handlers.OpenAPIYAML(), &written); err != nil {
		t.Fatal(err)
	}
	// Through JSON once, so numbers compare alike.
	b, _ := json.Marshal(written)
	written = nil
	_ = json.Unmarshal(b, &written)
	if !reflect.DeepEqual(served, written) {
		t.Error("the served document differs from handlers/openapi.yaml")
	}
	if _, err := openapitest.Parse(b); err != nil {
		t.Errorf("the served JSON is not a valid OpenAPI document: %v", err)
	}
}

// The live stream's events are the Dashboard schema, and the snapshot
// routes' 304 is documented.
func TestStreamAndSnapshotsMatchTheContract(t *testing.T) {
	t.Parallel()
	results := seededResults(t)
	log := slog.New(slog.DiscardHandler)
	api, err := handlers.NewAPI(results, func(context.Context) error { return nil }, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := handlers.NewSnapshots(results, handlers.SnapshotConfig{Poll: 10 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := handlers.NewStream(snaps, handlers.StreamConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	api.ServeFromSnapshots(snaps)
	mux := http.NewServeMux()
	api.Register(mux)
	handlers.RegisterDashboard(mux, stream)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { snaps.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })

	client := contractClient(t)
	resp, err := client.Get(srv.URL + "/api/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	var events int
	for events == 0 && lines.Scan() {
		if lines.Text() == "event: dashboard" {
			lines.Scan() // the data line, checked by the contract client as it is read
			events++
		}
	}
	if err := lines.Err(); err != nil || events == 0 {
		t.Fatalf("no dashboard event read: %v", err)
	}
	resp.Body.Close()

	for _, path := range []string{"/api/v1/summary", "/api/v1/candidates", "/api/v1/regions", "/api/v1/regions/North", "/api/v1/dashboard"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag from the snapshot", path)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("If-None-Match", etag)
		if resp, err = client.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d, want 304", path, resp.StatusCode)
		}
	}
}

// The contract client is not vacuous: drift in either direction fails.
func TestContractCatchesDrift(t *testing.T) {
	t.Parallel()
	summary := `{"registered_voters":1,"candidates":1,"votes_cast":0,"turnout":0,"rejected":{"duplicate_voter":0,"unknown_voter":0,"unknown_candidate":0,"outside_polls":0,"implausible_time":0,"wrong_station":0,"unknown_contest":0,"not_eligible":0,"after_station_close":0,"unknown_station":0},"dead_lettered":0,"leader":null,"updated_at":null,"contests":1}`
	tests := []struct {
		name, method, path, contentType string
		status                          int
		body                            string
		wantErr                         string
	}{
		{"a conforming summary", "GET", "/api/v1/summary", "application/json", 200, summary, ""},
		{"an undocumented field", "GET", "/api/v1/summary", "application/json", 200, strings.Replace(summary, `{`, `{"voter_ids":[],`, 1), "voter_ids"},
		{"a missing field", "GET", "/api/v1/summary", "application/json", 200, strings.Replace(summary, `"leader":null,`, ``, 1), "leader"},
		{"a share above 1", "GET", "/api/v1/candidates", "application/json", 200, `{"candidates":[{"candidate_id":"c","name":"n","party":"p","votes":1,"share":1.5}]}`, "share"},
		{"an undocumented status", "GET", "/api/v1/summary", "application/json", 418, `{"error":{"code":"internal","message":"x"}}`, "status"},
		{"an error of another shape", "GET", "/api/v1/regions/Atlantis", "application/json", 404, `{"message":"not found"}`, "error"},
		{"an unknown error code", "GET", "/api/v1/regions/Atlantis", "application/json", 404, `{"error":{"code":"vanished","message":"x"}}`, "code"},
		{"an undocumented path served", "GET", "/api/v1/ballots", "application/json", 200, `{}`, "not in the document"},
		{"an undocumented path refused", "GET", "/api/v1/ballots", "application/json", 404, `{"error":{"code":"not_found","message":"no"}}`, ""},
		{"a refused request answered 200", "GET", "/api/v1/timeline?minutes=0", "application/json", 200, `{"minutes":0,"timeline":[]}`, "refuses this request"},
		{"a 405 without Allow", "DELETE", "/api/v1/summary", "application/json", 405, `{"error":{"code":"method_not_allowed","message":"x"}}`, "405"},
	}
	contract := openapitest.Load(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			h := http.Header{"Content-Type": {tt.contentType}}
			err := contract.Check(req, nil, tt.status, h, []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("want it to pass: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// Each operation documents the error answers its handler can give, and
// every documented error status uses the error shape.
func TestDocumentedErrorsUseTheErrorShape(t *testing.T) {
	t.Parallel()
	doc := openapitest.Load(t).Doc()
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, ref := range op.Responses.Map() {
				if code < "400" || path == "/api/v1/stream" && code == "200" {
					continue
				}
				mt := ref.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || !strings.HasSuffix(mt.Schema.Ref, "/Error") {
					t.Errorf("%s %s %s: not the Error schema", method, path, code)
				}
			}
			if strings.HasPrefix(path, "/api/") && op.Responses.Status(http.StatusMethodNotAllowed) == nil {
				t.Errorf("%s %s: the 405 every API route can answer is not documented", method, path)
			}
		}
	}
}
