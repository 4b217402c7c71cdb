package handlers_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/openapitest"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/write"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// seededAPI serves a real database holding two candidates, voters v-1..v-6
// in regions North and South, and a few votes, one of them rejected.
func seededAPI(t testing.TB, ready handlers.ReadinessFunc) *httptest.Server {
	t.Helper()
	api, err := handlers.NewAPI(seededResults(t), ready, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// seededResults reads a real database holding two candidates, voters v-1..v-6
// in regions North and South, and a few votes, one of them rejected.
func seededResults(t testing.TB) *read.Results {
	t.Helper()
	pool := testutil.Pool(t)
	seedElection(t, pool)
	results, err := read.NewResults(pool)
	if err != nil {
		t.Fatal(err)
	}
	return results
}

// seedElection fills pool with seededAPI's election.
func seedElection(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	seed := testutil.NewSeeder(t, pool)
	seed.Candidates(t, testutil.Candidate(t, "c-ada", "Name c-ada", "Civic", ""), testutil.Candidate(t, "c-bob", "Name c-bob", "Civic", ""))
	at := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	var voters []domain.Voter
	for i := 1; i <= 6; i++ {
		voters = append(voters, testutil.Voter(t, fmt.Sprintf("v-%d", i), "Voter", []string{"North", "South"}[i%2], "Town", at.AddDate(-30, 0, 0), at.AddDate(0, -1, 0)))
	}
	seed.Voters(t, voters...)
	var votes []projections.Envelope[domain.VoteCast]
	for i, pick := range []struct{ voter, cand string }{{"v-1", "c-ada"}, {"v-2", "c-ada"}, {"v-3", "c-bob"}, {"v-1", "c-bob"}} {
		votes = append(votes, seed.Vote(t, i, pick.voter, pick.cand, "", at))
	}
	seed.ApplyVotes(t, votes...)
}

// contractClient checks every exchange against the OpenAPI document: a
// response that drifts from it fails the request.
func contractClient(t testing.TB) *http.Client { return openapitest.Load(t).Client() }

func fetch(t *testing.T, method, url string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := contractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want JSON", method, url, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, url, raw)
	}
	return resp.StatusCode, body, string(raw)
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestEndpointShapes(t *testing.T) {
	t.Parallel()
	srv := seededAPI(t, func(context.Context) error { return nil })
	tests := []struct {
		path     string
		wantKeys []string
		check    func(t *testing.T, body map[string]any)
	}{
		{"/api/v1/summary", []string{"candidates", "contests", "dead_lettered", "leader", "registered_voters", "rejected", "turnout", "updated_at", "votes_cast"},
			func(t *testing.T, b map[string]any) {
				if b["votes_cast"] != 3.0 || b["registered_voters"] != 6.0 || b["turnout"] != 0.5 {
					t.Errorf("totals: %v", b)
				}
				if got := keys(b["rejected"].(map[string]any)); !slices.Equal(got, []string{"after_station_close", "duplicate_voter", "implausible_time", "not_eligible", "outside_polls", "unknown_candidate", "unknown_contest", "unknown_station", "unknown_voter", "wrong_station"}) {
					t.Errorf("rejected keys %v", got)
				}
				if b["rejected"].(map[string]any)["duplicate_voter"] != 1.0 {
					t.Errorf("rejected: %v", b["rejected"])
				}
				leader := b["leader"].(map[string]any)
				if got := keys(leader); !slices.Equal(got, []string{"candidate_id", "name", "party", "votes"}) || leader["candidate_id"] != "c-ada" || leader["votes"] != 2.0 {
					t.Errorf("leader %v", leader)
				}
			}},
		{"/api/v1/candidates", []string{"candidates"}, func(t *testing.T, b map[string]any) {
			cs := b["candidates"].([]any)
			first := cs[0].(map[string]any)
			if got := keys(first); !slices.Equal(got, []string{"candidate_id", "name", "party", "share", "votes"}) {
				t.Errorf("candidate keys %v", got)
			}
			if first["candidate_id"] != "c-ada" || first["share"] != 2.0/3 {
				t.Errorf("first candidate %v", first)
			}
		}},
		{"/api/v1/regions", []string{"regions"}, func(t *testing.T, b map[string]any) {
			rs := b["regions"].([]any)
			if len(rs) != 2 {
				t.Fatalf("regions %v", rs)
			}
			r := rs[0].(map[string]any)
			if got := keys(r); !slices.Equal(got, []string{"leader_candidate_id", "region", "registered_voters", "tallies", "turnout", "votes_cast"}) {
				t.Errorf("region keys %v", got)
			}
		}},
		{"/api/v1/regions/South", []string{"leader_candidate_id", "region", "registered_voters", "tallies", "turnout", "votes_cast"}, func(t *testing.T, b map[string]any) {
			// South holds v-1 and v-3 (odd), who voted c-ada and c-bob.
			if b["votes_cast"] != 2.0 || b["registered_voters"] != 3.0 {
				t.Errorf("South: %v", b)
			}
			tallies := b["tallies"].([]any)
			if got := keys(tallies[0].(map[string]any)); !slices.Equal(got, []string{"candidate_id", "votes"}) {
				t.Errorf("tally keys %v", got)
			}
		}},
		{"/healthz", []string{"status"}, nil},
		{"/readyz", []string{"status"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body, _ := fetch(t, http.MethodGet, srv.URL+tt.path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %v", code, body)
			}
			if got := keys(body); !slices.Equal(got, tt.wantKeys) {
				t.Errorf("keys = %v, want %v", got, tt.wantKeys)
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

func TestBadRequestsGetJSONErrors(t *testing.T) {
	t.Parallel()
	srv := seededAPI(t, func(context.Context) error { return nil })
	tests := []struct {
		name      string
		method    string
		path      string
		wantCode  int
		wantField string
	}{
		{"unknown region", "GET", "/api/v1/regions/Atlantis", 404, ""},
		{"region with a slash", "GET", "/api/v1/regions/A%2FB", 400, "region"},
		{"region with markup", "GET", "/api/v1/regions/%3Cscript%3E", 400, "region"},
		{"region with SQL", "GET", "/api/v1/regions/x';DROP%20TABLE%20ballots;--", 400, "region"},
		{"unknown query parameter", "GET", "/api/v1/summary?voter_id=v-1", 400, "voter_id"},
		{"unknown endpoint", "GET", "/api/v1/ballots", 404, ""},
		{"wrong method", "POST", "/api/v1/summary", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, raw := fetch(t, tt.method, srv.URL+tt.path)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d: %s", code, tt.wantCode, raw)
			}
			e, ok := body["error"].(map[string]any)
			if !ok || e["code"] == "" || e["message"] == "" {
				t.Fatalf("no error object: %s", raw)
			}
			if field, _ := e["field"].(string); field != tt.wantField {
				t.Errorf("field = %q, want %q", field, tt.wantField)
			}
		})
	}
}

func TestReadinessFailureIs503(t *testing.T) {
	t.Parallel()
	srv := seededAPI(t, func(context.Context) error { return errors.New("database migrations pending") })
	code, body, _ := fetch(t, http.MethodGet, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %v", code, body)
	}
	if code, _, _ := fetch(t, http.MethodGet, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz = %d while not ready; liveness must not depend on readiness", code)
	}
}

// No response may link a voter to a candidate; none even names a voter.
func TestNoResponseNamesAVoter(t *testing.T) {
	t.Parallel()
	srv := seededAPI(t, func(context.Context) error { return nil })
	for _, path := range []string{"/api/v1/summary", "/api/v1/candidates", "/api/v1/regions", "/api/v1/regions/North", "/api/v1/regions/South", "/healthz", "/readyz"} {
		_, _, raw := fetch(t, http.MethodGet, srv.URL+path)
		if strings.Contains(raw, "v-") || strings.Contains(raw, "voter_id") {
			t.Errorf("%s reveals a voter: %s", path, raw)
		}
	}
}

func TestResultsCSVHasEveryRegionAndCandidate(t *testing.T) {
	t.Parallel()
	srv := seededAPI(t, func(context.Context) error { return nil })
	resp, err := contractClient(t).Get(srv.URL + "/api/v1/results.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	records, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(records[0], ","); got != "region,candidate_id,candidate,party,votes,share_of_region,region_votes_cast,region_registered_voters,region_turnout" {
		t.Errorf("header %s", got)
	}
	// 2 regions × 2 candidates, zeros included; 3 votes counted in all.
	if len(records) != 5 {
		t.Fatalf("%d rows, want 4 and a header: %v", len(records)-1, records)
	}
	var total int
	for _, r := range records[1:] {
		n, err := strconv.Atoi(r[4])
		if err != nil {
			t.Fatalf("votes %q", r[4])
		}
		total += n
	}
	if total != 3 {
		t.Errorf("votes in the export sum to %d, want 3", total)
	}
}

func TestCSVCellsCannotRunAsFormulas(t *testing.T) {
	t.Parallel()
	pool := testutil.Pool(t)
	store, _ := write.NewStore(pool)
	party, _ := domain.NewParty("=HYPERLINK(\"x\")")
	c, _ := domain.NewCandidate("c-x", "+cmd", party, "", "", "")
	if _, err := store.ApplyCandidates(context.Background(), []projections.Envelope[domain.CandidateRegistered]{{Event: domain.CandidateRegistered{Candidate: c}}}); err != nil {
		t.Fatal(err)
	}
	region, _ := domain.NewRegion("North")
	at := time.Now().UTC()
	v, _ := domain.NewVoter("v-1", "N", "f", at.AddDate(-30, 0, 0), region, "C", at)
	if _, err := store.ApplyVoters(context.Background(), []projections.Envelope[domain.VoterRegistered]{{Event: domain.VoterRegistered{Voter: v}}}); err != nil {
		t.Fatal(err)
	}
	results, _ := read.NewResults(pool)
	api, _ := handlers.NewAPI(results, func(context.Context) error { return nil }, nil, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := contractClient(t).Get(srv.URL + "/api/v1/results.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), ",+cmd") || strings.Contains(string(body), `,"=HYPERLINK`) {
		t.Errorf("a cell starts with a formula character:\n%s", body)
	}
}

func TestTimelineAndDashboard(t *testing.T) {
	t.Parallel()
	srv := seededAPI(t, func(context.Context) error { return nil })
	code, body, _ := fetch(t, http.MethodGet, srv.URL+"/api/v1/timeline?minutes=30")
	if code != http.StatusOK || body["minutes"] != 30.0 {
		t.Fatalf("timeline: %d %v", code, body)
	}
	points := body["timeline"].([]any)
	if len(points) != 1 {
		t.Fatalf("timeline points %v, want the one minute of votes", points)
	}
	votes := points[0].(map[string]any)["votes"].(map[string]any)
	if votes["c-ada"] != 2.0 || votes["c-bob"] != 1.0 {
		t.Errorf("timeline votes %v", votes)
	}
	for _, bad := range []string{"0", "1441", "ten", "-5"} {
		if code, body, _ := fetch(t, http.MethodGet, srv.URL+"/api/v1/timeline?minutes="+bad); code != http.StatusBadRequest ||
			body["error"].(map[string]any)["field"] != "minutes" {
			t.Errorf("minutes=%s: %d %v", bad, code, body)
		}
	}
	code, body, raw := fetch(t, http.MethodGet, srv.URL+"/api/v1/dashboard")
	if code != http.StatusOK {
		t.Fatalf("dashboard: %d", code)
	}
	if got := keys(body); !slices.Equal(got, []string{"breakdowns", "candidates", "generated_at", "monitoring", "parties", "regions", "summary", "timeline"}) {
		t.Errorf("dashboard keys %v", got)
	}
	if strings.Contains(raw, "v-") {
		t.Errorf("the dashboard names a voter: %s", raw)
	}
	gender := body["breakdowns"].(map[string]any)["gender"].([]any)
	if len(gender) != 1 || gender[0].(map[string]any)["votes"] != 3.0 {
		t.Errorf("gender breakdown %v", gender)
	}
}
