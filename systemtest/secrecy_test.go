package systemtest

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/testutil"
)

// The dashboard is served with a policy that allows this origin only and no
// inline script, and the page has none.
func TestDashboardSecurityHeaders(t *testing.T) {
	p := startSystem(t, system{partitions: 1})
	for _, path := range []string{"/", "/assets/app.js"} {
		resp, err := http.Get(p.api + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %s", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "http") {
			t.Errorf("%s: CSP %q allows inline code or other origins", path, csp)
		}
		for header, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := resp.Header.Get(header); got != want {
				t.Errorf("%s: %s = %q, want %q", path, header, got, want)
			}
		}
		if path == "/" {
			for _, tag := range strings.Split(string(body), "<script")[1:] {
				if end := strings.Index(tag, ">"); end < 0 || !strings.Contains(tag[:end], "src=") {
					t.Errorf("the page has an inline script: <script%s", tag[:min(len(tag), 80)])
				}
			}
			if strings.Contains(string(body), "https://") || strings.Contains(string(body), "http://") {
				t.Error("the page refers to another origin")
			}
		}
	}
}

// Ballot secrecy: no route of the API or the dashboard ever names a voter
// (so none can link a voter to a candidate), and no log line, at any level,
// names a voter together with a candidate.
func TestNothingLinksAVoterToTheirChoice(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	// Voter 230 is in the East: the station serves it.
	east, _ := domain.NewRegion("East")
	stations := []handlers.Station{{Name: "north-1", Token: stationToken, Region: east}}
	p := startSystem(t, system{partitions: 4, projector: true, stations: stations, logs: logs})
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	// A vote through the intake API too, and a rejected one.
	if code, body, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(9001, e.voterIDs[230], "c-bob")); code != http.StatusAccepted {
		t.Fatalf("intake: %d %v", code, body)
	}
	if code, _, _ := p.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(9002, e.voterIDs[230], "c-ada")); code != http.StatusAccepted {
		t.Fatal("intake: second vote refused at the door")
	}
	e.rejected["duplicate_voter"]++
	p.waitFor(t, e, 1)

	voters := append([]string{"stranger-"}, e.voterIDs...)
	routes := []string{"/", "/assets/app.js", "/assets/style.css", "/api/v1/summary", "/api/v1/candidates", "/api/v1/regions",
		"/api/v1/regions/North", "/api/v1/dashboard", "/api/v1/status", "/api/v1/timeline?minutes=1440", "/api/v1/results.csv", "/api/v1/stations",
		"/metrics", "/healthz", "/readyz", "/api/v1/nope"}
	urls := []string{p.ops + "/metrics"}
	for _, route := range routes {
		urls = append(urls, p.api+route)
	}
	for _, route := range urls {
		resp, err := http.Get(route)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, v := range voters {
			if strings.Contains(string(body), v) {
				t.Errorf("GET %s names voter %s", route, v)
				break
			}
		}
	}
	// The live stream's first event.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.api+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data:") {
			for _, v := range voters {
				if strings.Contains(line, v) {
					t.Errorf("the live stream names voter %s", v)
				}
			}
			break
		}
	}
	resp.Body.Close()

	// Secrets never reach the logs.
	dbPassword := ""
	if u, err := url.Parse(p.dsn); err == nil {
		dbPassword, _ = u.User.Password()
	}
	for name, secret := range map[string]string{"station token": stationToken, "revoked token": revokedToken, "database password": dbPassword} {
		if secret != "" && strings.Contains(logs.String(), secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}

	lines := strings.Split(logs.String(), "\n")
	if len(lines) < 10 {
		t.Fatalf("only %d log lines captured: is the test looking at the logs at all?", len(lines))
	}
	for _, line := range lines {
		for _, v := range voters {
			if !strings.Contains(line, v) {
				continue
			}
			for _, c := range []string{"c-ada", "c-bob", "c-cy", "c-nobody"} {
				if strings.Contains(line, c) {
					t.Errorf("a log line links voter %s to candidate %s: %s", v, c, line)
				}
			}
		}
	}
}
