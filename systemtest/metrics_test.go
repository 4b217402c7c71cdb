package systemtest

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// scrape fetches /metrics and returns every sample by its full series name
// (name and labels as exposed, e.g. `x_total{topic="votes"}`).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsReportTheProjectionExactly(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	p.get(t, "/api/v1/summary", nil)
	p.get(t, "/api/v1/regions/North", nil)

	m := scrape(t, p.ops+"/metrics")
	var wantDead int64
	for _, n := range e.deadLettered {
		wantDead += int64(n)
	}
	want := map[string]float64{
		`votewatch_projection_votes_cast`:                                                                         float64(e.counted),
		`votewatch_contest_votes_cast{contest="default"}`:                                                         float64(e.counted),
		`votewatch_contest_decided{contest="default"}`:                                                            0,
		`votewatch_projection_dead_lettered`:                                                                      float64(wantDead),
		`votewatch_projection_rejections{reason="duplicate_voter"}`:                                               float64(e.rejected["duplicate_voter"]),
		`votewatch_projection_rejections{reason="unknown_voter"}`:                                                 float64(e.rejected["unknown_voter"]),
		`votewatch_projection_rejections{reason="unknown_candidate"}`:                                             float64(e.rejected["unknown_candidate"]),
		`votewatch_projection_up`:                                                                                 1,
		`votewatch_log_reachable`:                                                                                 1,
		`votewatch_consumer_lag{partition="0",topic="votes"}`:                                                     0,
		`votewatch_projector_dead_lettered_total`:                                                                 float64(wantDead),
		`votewatch_http_request_duration_seconds_count{code="200",method="GET",route="/api/v1/regions/{region}"}`: 1,
	}
	for series, v := range want {
		if got, ok := m[series]; !ok || got != v {
			t.Errorf("%s = %v (exposed: %v), want %v", series, got, ok, v)
		}
	}
	// Counters that must have moved; their exact values depend on batching
	// and redelivery.
	for _, series := range []string{
		`votewatch_projector_batch_size_count{batcher="votes"}`,
		`votewatch_projector_apply_seconds_count{batcher="votes",outcome="committed"}`,
		`votewatch_projector_votes_accepted_total`,
		`votewatch_projection_events_applied{topic="votes"}`,
		`go_goroutines`,
	} {
		if m[series] <= 0 {
			t.Errorf("%s = %v, want > 0", series, m[series])
		}
	}
	var handled float64
	for series, v := range m {
		if strings.HasPrefix(series, "votewatch_watermill_handler_execution_time_seconds_count{") {
			handled += v
		}
	}
	if handled < float64(len(e.records)) {
		t.Errorf("watermill handled %v messages, want at least the %d published", handled, len(e.records))
	}
}

// /metrics is served only on its own listener (--metrics-addr), never on
// the public one, and a client's made-up HTTP methods cannot grow its
// label set: they are all OTHER.
func TestMetricsApartFromThePublicListener(t *testing.T) {
	p := startSystem(t, system{partitions: 1})
	resp, err := http.Get(p.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics on the public listener: %d %.80s, want 404", resp.StatusCode, body)
	}
	for _, method := range []string{"FOO", "BREW", "X-A-VERY-LONG-INVENTED-METHOD", http.MethodDelete} {
		req, _ := http.NewRequest(method, p.api+"/api/v1/summary", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	m := scrape(t, p.ops+"/metrics")
	if got := m[`votewatch_http_request_duration_seconds_count{code="405",method="OTHER",route="/api/v1/summary"}`]; got != 3 {
		t.Errorf("requests with invented methods under OTHER: %v, want 3", got)
	}
	if got := m[`votewatch_http_request_duration_seconds_count{code="405",method="DELETE",route="/api/v1/summary"}`]; got != 1 {
		t.Errorf("DELETE requests: %v, want 1 under their own label", got)
	}
	for series := range m {
		if strings.Contains(series, "FOO") || strings.Contains(series, "BREW") || strings.Contains(series, "INVENTED") {
			t.Errorf("a client's method became a label: %s", series)
		}
	}
}
