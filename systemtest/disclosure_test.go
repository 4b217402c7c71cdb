package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/write"
)

// publicRoutes are the read API's routes that carry figures of the count.
var publicRoutes = []string{
	"/api/v1/summary", "/api/v1/candidates", "/api/v1/regions", "/api/v1/regions/North", "/api/v1/dashboard",
	"/api/v1/timeline", "/api/v1/contests", "/api/v1/contests/default", "/api/v1/results.csv",
	"/api/v1/results.csv?contest=all", "/api/v1/results.cdf.json",
}

// generatedAt matches the answer's own time of generation, which moves
// with the clock and says nothing of the count.
var generatedAt = regexp.MustCompile(`"(generated_at|GeneratedDate)":"[^"]*"`)

// TestObserverLearnsNoSingleVote is issue 21's observer: it polls every
// public route at 10 Hz and listens to the live stream while single votes
// arrive in a quiet period, and must see nothing move until k votes have
// gathered in a cell; then the figures move (so the observer would have
// seen it) and, after close-polls, they are exact.
func TestObserverLearnsNoSingleVote(t *testing.T) {
	t.Parallel()
	const k = 10
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := testutil.Pool(t)
	seed := testutil.NewSeeder(t, pool)
	seed.Candidates(t, testutil.Candidate(t, "c1", "C One", "P1", ""), testutil.Candidate(t, "c2", "C Two", "P2", ""))
	at := time.Now().UTC().Add(-time.Hour)
	for i := range 3 * k {
		seed.Voters(t, testutil.Voter(t, fmt.Sprintf("v%d", i), "V", "North", "Town", at.AddDate(-40, 0, 0), at))
	}
	vote := func(n int, cand string) {
		seed.ApplyVotes(t, seed.Vote(t, n, fmt.Sprintf("v%d", n), cand, "", time.Now().UTC()))
	}
	for n := range k {
		vote(n, []string{"c1", "c2"}[n%2])
	}
	rule, err := domain.NewDisclosure(k)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := write.NewReleaser(pool, rule, write.ReleaserConfig{Every: 20 * time.Millisecond}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = rel.Run(ctx) })
	srv, err := app.NewAPIServer(testLogger(), "127.0.0.1:0", pool, nil, metrics.New(), nil, k)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = srv.Run(ctx) })
	base := "http://" + srv.Addr()
	get := func(route string) (string, error) {
		resp, err := http.Get(base + route)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %s %s", route, resp.Status, b)
		}
		return generatedAt.ReplaceAllString(string(b), ""), err
	}
	votesCast := func() int64 {
		body, err := get("/api/v1/summary")
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			VotesCast int64 `json:"votes_cast"`
		}
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		return s.VotesCast
	}
	testutil.Eventually(t, 30*time.Second, "the first k votes published", func() (bool, string) {
		n := votesCast()
		return n == k, fmt.Sprintf("votes_cast %d", n)
	})

	// The live stream, as a browser reads it: every dashboard event.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var mu sync.Mutex
	var events []string
	wg.Go(func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				mu.Lock()
				events = append(events, generatedAt.ReplaceAllString(data, ""))
				mu.Unlock()
			}
		}
	})

	// The observer: every route at 10 Hz, each answer compared with the
	// first.
	first := map[string]string{}
	for _, r := range publicRoutes {
		if first[r], err = get(r); err != nil {
			t.Fatal(err)
		}
	}
	polls := make(chan int, 1)
	seen := make(chan string, 1)
	obsCtx, stopObserver := context.WithCancel(ctx)
	var obs sync.WaitGroup
	obs.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-obsCtx.Done():
				return
			case <-tick.C:
			}
			for _, r := range publicRoutes {
				body, err := get(r)
				if err != nil {
					if obsCtx.Err() == nil {
						seen <- err.Error()
					}
					return
				}
				if body != first[r] {
					seen <- fmt.Sprintf("%s moved:\nbefore %s\nafter  %s", r, first[r], body)
					return
				}
			}
			select {
			case polls <- n:
			default:
			}
		}
	})
	// k-1 single votes, each followed by at least two of the observer's
	// rounds (the release tick is 20 ms, the snapshot poll 50 ms).
	for n := k; n < 2*k-1; n++ {
		vote(n, "c1")
		for range 2 {
			select {
			case msg := <-seen:
				t.Fatalf("after the single vote %d: the observer saw %s", n-k+1, msg)
			case <-polls:
			case <-time.After(30 * time.Second):
				t.Fatal("the observer stopped polling")
			}
		}
	}
	stopObserver()
	obs.Wait()
	select {
	case msg := <-seen:
		t.Fatalf("the observer saw %s", msg)
	default:
	}
	mu.Lock()
	for i, e := range events[min(1, len(events)):] {
		if e != events[0] {
			t.Errorf("live stream event %d differs from the first while single votes arrived:\n%s\n%s", i+1, events[0], e)
		}
	}
	mu.Unlock()

	// The k-th vote of the cell releases it.
	vote(2*k-1, "c2")
	testutil.Eventually(t, 30*time.Second, "the next k votes published together", func() (bool, string) {
		n := votesCast()
		return n == 2*k, fmt.Sprintf("votes_cast %d", n)
	})

	// One more vote stays unpublished until the polls close, then every
	// figure is exact.
	vote(2*k, "c1")
	a, err := domain.NewOperatorActed(domain.ActionClosePolls, "tester", "host", "test", "ok", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.Store.RecordOperatorActions(ctx, []projections.Envelope[domain.OperatorActed]{{Event: a, Position: seed.Take(domain.TopicOperatorActions)}}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "exact figures after close-polls", func() (bool, string) {
		n := votesCast()
		return n == 2*k+1, fmt.Sprintf("votes_cast %d", n)
	})
}
