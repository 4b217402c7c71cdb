package handlers_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/votewatch/votewatch/handlers"
)

// The per-address limits hold under pressure (issue 24 §6): a table full
// of addresses refuses new ones instead of letting them through unlimited,
// an IPv6 client cannot step around its limit by taking another address of
// its /64, a trusted proxy's forwarded client is limited rather than the
// proxy, and a station pays for the bytes it makes the intake parse.

const limitsToken = "limits-station-token-001"

// limitsIntake is an intake with one station, its rate and burst, behind
// the proxies trusted.
func limitsIntake(t *testing.T, rate float64, burst int, trusted ...string) http.Handler {
	t.Helper()
	proxies, err := handlers.ParseTrustedProxies(trusted)
	if err != nil {
		t.Fatal(err)
	}
	in, err := handlers.NewIntake(acceptAll{}, handlers.IntakeConfig{
		Stations: []handlers.Station{{Name: "s-1", Token: limitsToken, Region: fuzzRegion}},
		Rate:     rate, Burst: burst, TrustedProxies: proxies,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	in.Register(mux)
	return mux
}

// serve answers one request from remote (host:port), with the headers
// given as name, value pairs.
func serve(h http.Handler, method, path, remote, token, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// guesses sends n failed authentications from remote and counts the
// answers by status.
func guesses(h http.Handler, n int, remote string, headers ...string) map[int]int {
	got := map[int]int{}
	for i := range n {
		rec := serve(h, "POST", "/api/v1/votes", remote, fmt.Sprintf("guessed-token-%010d", i), "{}", headers...)
		got[rec.Code]++
	}
	return got
}

// tableSize is how many addresses the limiters track (maxTrackedAddresses).
const tableSize = 10_000

// fillerAddr is the i-th of tableSize distinct IPv4 addresses.
func fillerAddr(i int) string { return fmt.Sprintf("10.%d.%d.%d:4000", i>>16&0xff, i>>8&0xff, i&0xff) }

func TestAFullAuthenticationTableRefusesNewAddresses(t *testing.T) {
	t.Parallel()
	h := limitsIntake(t, 1e6, 1000)
	// Every tracked address has guessed once: none has its budget back, so
	// none can be forgotten.
	for i := range tableSize {
		if rec := serve(h, "POST", "/api/v1/votes", fillerAddr(i), "guessed-token-filler", "{}"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("filler %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	got := guesses(h, 1000, "203.0.113.9:5000")
	if got[http.StatusUnauthorized] > 10 {
		t.Errorf("a fresh address with the table full: %v, want at most 10 tries (401) and the rest 429", got)
	}
	// A station with a good token is never held up by the table.
	if rec := serve(h, "POST", "/api/v1/votes", "203.0.113.10:5000", limitsToken, goodVote(1)); rec.Code != http.StatusAccepted {
		t.Errorf("a good token from a fresh address with the table full: %d %s, want 202", rec.Code, rec.Body)
	}
}

func TestAFullLookupTableRefusesNewAddresses(t *testing.T) {
	t.Parallel()
	api, err := handlers.NewAPI(seededResults(t), func(context.Context) error { return nil }, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	// A malformed vote_id is refused after it spent from the budget, and
	// without a query: the table fills cheaply.
	for i := range tableSize {
		req := httptest.NewRequest("GET", "/api/v1/ballots/not-a-uuid", nil)
		req.RemoteAddr = fillerAddr(i)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("filler %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	got := map[int]int{}
	for range 1000 {
		req := httptest.NewRequest("GET", "/api/v1/ballots/not-a-uuid", nil)
		req.RemoteAddr = "203.0.113.9:5000"
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		got[rec.Code]++
	}
	if got[http.StatusTooManyRequests] < 1000-30 {
		t.Errorf("1000 lookups from a fresh address with the table full: %v, want at most 30 answered and the rest 429", got)
	}
}

func TestIPv6ClientsAreLimitedByTheirSlash64(t *testing.T) {
	t.Parallel()
	h := limitsIntake(t, 1e6, 1000)
	got := map[int]int{}
	for i := range 20 {
		// Each guess from another address of the same /64.
		remote := fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1)
		got[serve(h, "POST", "/api/v1/votes", remote, fmt.Sprintf("guessed-token-%010d", i), "{}").Code]++
	}
	if got[http.StatusUnauthorized] != 10 || got[http.StatusTooManyRequests] != 10 {
		t.Errorf("20 guesses from one /64: %v, want 10 tries and 10 refused", got)
	}
	// Another /64 has its own budget.
	if rec := serve(h, "POST", "/api/v1/votes", "[2001:db8:1:3::1]:5000", "guessed-token-other", "{}"); rec.Code != http.StatusUnauthorized {
		t.Errorf("a guess from another /64: %d, want 401", rec.Code)
	}
}

func TestATrustedProxysForwardedClientIsLimited(t *testing.T) {
	t.Parallel()
	h := limitsIntake(t, 1e6, 1000, "192.0.2.1", "2001:db8:ffff::/48")
	const proxy = "192.0.2.1:443"
	// Ten guesses by one client behind the proxy use up that client's
	// budget, not the proxy's: the next client is still heard.
	if got := guesses(h, 11, proxy, "X-Forwarded-For", "198.51.100.7"); got[http.StatusUnauthorized] != 10 || got[http.StatusTooManyRequests] != 1 {
		t.Errorf("11 guesses by one client behind the proxy: %v, want 10 tries then 429", got)
	}
	if got := guesses(h, 1, proxy, "X-Forwarded-For", "198.51.100.8"); got[http.StatusUnauthorized] != 1 {
		t.Errorf("another client behind the proxy: %v, want its guess heard (401)", got)
	}
	// A client cannot pick its address by writing the header itself: the
	// address the trusted proxy appended is the one used.
	if got := guesses(h, 1, proxy, "X-Forwarded-For", "203.0.113.50, 198.51.100.7"); got[http.StatusTooManyRequests] != 1 {
		t.Errorf("a spent client prefixing a forged address: %v, want 429", got)
	}
	// Nobody else's X-Forwarded-For is believed: an untrusted peer is
	// limited by its own address whatever the header says.
	got := map[int]int{}
	for i := range 11 {
		rec := serve(h, "POST", "/api/v1/votes", "198.51.100.200:5000", fmt.Sprintf("guessed-token-%010d", i), "{}",
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		got[rec.Code]++
	}
	if got[http.StatusUnauthorized] != 10 || got[http.StatusTooManyRequests] != 1 {
		t.Errorf("11 guesses from an untrusted peer rotating X-Forwarded-For: %v, want 10 tries then 429", got)
	}
	if _, err := handlers.ParseTrustedProxies([]string{"not-an-address"}); err == nil {
		t.Error("ParseTrustedProxies accepted not-an-address")
	}
	if p, err := handlers.ParseTrustedProxies([]string{"10.0.0.0/8", "::1"}); err != nil || len(p) != 2 || p[1] != netip.MustParsePrefix("::1/128") {
		t.Errorf("ParseTrustedProxies = %v, %v", p, err)
	}
}

func goodVote(n int) string {
	return fmt.Sprintf(`{"vote_id":"01900000-0000-7000-8000-%012d","voter_id":"v-%d","candidate_id":"c-ada","cast_at":"2026-11-03T15:04:05Z"}`, n, n)
}

// paddedBatch is a batch of votes padded with whitespace to about size
// bytes; bad makes its last vote invalid.
func paddedBatch(votes, size int, bad bool) string {
	items := make([]string, votes)
	for i := range items {
		items[i] = goodVote(i + 1)
	}
	if bad {
		items[votes-1] = `{"vote_id":"nope","voter_id":"v","candidate_id":"c","cast_at":"2026-11-03T15:04:05Z"}`
	}
	b := `{"votes":[` + strings.Join(items, ",") + `]}`
	if pad := size - len(b) - 1; pad > 0 {
		b = `{"votes":[` + strings.Repeat(" ", pad) + strings.Join(items, ",") + `]}`
	}
	return b
}

func TestABatchIsChargedForItsSizeBeforeItIsParsed(t *testing.T) {
	t.Parallel()
	const almostMiB = 1<<20 - 64
	t.Run("a batch that fails validation costs its size", func(t *testing.T) {
		t.Parallel()
		h := limitsIntake(t, 0.001, 1000)
		if rec := serve(h, "POST", "/api/v1/votes:batch", "192.0.2.50:1", limitsToken, paddedBatch(3, almostMiB, true)); rec.Code != http.StatusBadRequest {
			t.Fatalf("an invalid 1 MiB batch: %d %s, want 400", rec.Code, rec.Body)
		}
		if rec := serve(h, "POST", "/api/v1/votes", "192.0.2.50:1", limitsToken, goodVote(1)); rec.Code != http.StatusTooManyRequests {
			t.Errorf("a vote after an invalid 1 MiB batch spent the budget: %d %s, want 429", rec.Code, rec.Body)
		}
	})
	t.Run("a station over its rate is refused before its body is parsed", func(t *testing.T) {
		t.Parallel()
		h := limitsIntake(t, 0.001, 1000)
		if rec := serve(h, "POST", "/api/v1/votes:batch", "192.0.2.50:1", limitsToken, paddedBatch(1000, 0, false)); rec.Code != http.StatusAccepted {
			t.Fatalf("a batch of the burst: %d %s, want 202", rec.Code, rec.Body)
		}
		for _, body := range []string{`{"votes": [ not json`, paddedBatch(1, 4096, false)} {
			if rec := serve(h, "POST", "/api/v1/votes:batch", "192.0.2.50:1", limitsToken, body); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
				t.Errorf("a batch after the budget is spent: %d %s, want 429 with Retry-After", rec.Code, rec.Body)
			}
		}
	})
	t.Run("a valid batch costs its votes, or its size when padded", func(t *testing.T) {
		t.Parallel()
		h := limitsIntake(t, 0.001, 1000)
		if rec := serve(h, "POST", "/api/v1/votes:batch", "192.0.2.50:1", limitsToken, paddedBatch(10, almostMiB, false)); rec.Code != http.StatusAccepted {
			t.Fatalf("a padded batch of 10 votes: %d %s, want 202", rec.Code, rec.Body)
		}
		if rec := serve(h, "POST", "/api/v1/votes", "192.0.2.50:1", limitsToken, goodVote(11)); rec.Code != http.StatusTooManyRequests {
			t.Errorf("a vote after a padded 1 MiB batch: %d, want 429 (the batch cost its size)", rec.Code)
		}
		h = limitsIntake(t, 0.001, 1000)
		if rec := serve(h, "POST", "/api/v1/votes:batch", "192.0.2.50:1", limitsToken, paddedBatch(999, 0, false)); rec.Code != http.StatusAccepted {
			t.Fatalf("a batch of 999 votes: %d %s, want 202", rec.Code, rec.Body)
		}
		if rec := serve(h, "POST", "/api/v1/votes", "192.0.2.50:1", limitsToken, goodVote(1000)); rec.Code != http.StatusAccepted {
			t.Errorf("the burst's last vote: %d %s, want 202", rec.Code, rec.Body)
		}
		if rec := serve(h, "POST", "/api/v1/votes", "192.0.2.50:1", limitsToken, goodVote(1001)); rec.Code != http.StatusTooManyRequests {
			t.Errorf("a vote past the burst: %d, want 429", rec.Code)
		}
	})
}
