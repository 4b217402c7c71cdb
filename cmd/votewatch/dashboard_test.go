package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/testutil"
)

// browser starts headless Chromium (Debian's chromium package) with a fresh
// profile and no background traffic.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (apt-get install chromium; .ci/run does it)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

func digits(s string) int64 {
	n, _ := strconv.ParseInt(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s), 10, 64)
	return n
}

// publishElection publishes the default US election's register and the
// next n votes of its plan.
func publishElection(t *testing.T, cfg kafka.Config, e *simulator.Election, plan *simulator.VotePlan, register bool, n int) {
	t.Helper()
	pub, err := kafka.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if register {
		sim, err := simulator.New(simulator.Config{
			Election: e, Rate: 1, TopicSize: func(context.Context, string) (int64, error) { return 0, nil },
			CloseRegistration: func(context.Context) error { return kafka.CloseRegistration(pub, time.Now()) },
		}, pub, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Register(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		msgs, ok := plan.Next(time.Now())
		if !ok {
			t.Fatal("the plan ran out of votes")
		}
		if err := pub.Publish(domain.TopicVotes, msgs...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDashboardShowsWhatTheAPIServes(t *testing.T) {
	p := startPipeline(t, 8)
	e, err := simulator.Generate(simulator.OneRaceElection(), 1500, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Faults add rejected and dead-lettered messages beside each counted
	// vote, so the monitoring panel has something to show.
	plan := simulator.NewVotePlan(e, simulator.Faults{Redeliveries: 0.03, DoubleVotes: 0.03, UnknownVoters: 0.02, UnknownCandidates: 0.02, Malformed: 0.02})
	publishElection(t, p.kafka, e, plan, true, 600)
	waitForVotes(t, p, 600)

	ctx := browser(t)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	waitText := func(sel string, want func(string) bool, what string) {
		t.Helper()
		testutil.Eventually(t, 20*time.Second, what, func() (bool, string) {
			s := text(sel)
			return want(s), s
		})
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(p.api+"/"), chromedp.WaitVisible(chromedp.ID("votes-cast"))); err != nil {
		t.Fatal(err)
	}
	waitText("#votes-cast", func(s string) bool { return digits(s) == 600 }, "the page to show 600 votes")

	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if got := digits(text("#registered-voters")); got != s.RegisteredVoters {
		t.Errorf("page registered voters %d, API %d", got, s.RegisteredVoters)
	}
	if got := digits(text("#candidate-count")); got != s.Candidates {
		t.Errorf("page candidates %d, API %d", got, s.Candidates)
	}
	if got, want := text("#turnout"), fmt.Sprintf("%.1f%%", s.Turnout*100); got != want {
		t.Errorf("page turnout %q, API %q", got, want)
	}
	// Rejections may still be landing after the last counted vote: once the
	// whole log is applied, the page must show exactly the API's figures.
	p.waitQuiet(t, "test-projector")
	var settled summaryResp
	p.get(t, "/api/v1/summary", &settled)
	// Every reason the API counts, labelled on the page (all six of them).
	for _, reason := range slices.Sorted(maps.Keys(settled.Rejected)) {
		want := settled.Rejected[reason]
		waitText("#rej-"+reason, func(s string) bool { return digits(s) == want }, fmt.Sprintf("page to show %d %s rejections", want, reason))
	}
	waitText("#dead-lettered", func(s string) bool { return digits(s) == settled.DeadLettered }, "page to show the dead-lettered count")
	if settled.DeadLettered == 0 || settled.Rejected["duplicate_voter"] == 0 {
		t.Errorf("the injected faults left no trace: %+v", settled)
	}
	// The latest rejections and dead letters show their time to the minute.
	for _, sel := range []string{"#recent-rejections li", "#recent-dead-letters li"} {
		got := text(sel)
		when, _, _ := strings.Cut(got, " — ")
		if !regexp.MustCompile(`^\d{1,2}:\d{2}( [AP]M)?$`).MatchString(when) {
			t.Errorf("%s reads %q, want a time to the minute", sel, got)
		}
	}
	var cands struct {
		Candidates []struct {
			CandidateID string `json:"candidate_id"`
			Name        string `json:"name"`
			Votes       int64  `json:"votes"`
		} `json:"candidates"`
	}
	p.get(t, "/api/v1/candidates", &cands)
	if got, want := text("#leader-name"), cands.Candidates[0].Name; got != want || s.Leader.CandidateID != cands.Candidates[0].CandidateID {
		t.Errorf("page leader %q, API %q", got, want)
	}
	if got := digits(text("#leader-votes")); got != s.Leader.Votes {
		t.Errorf("page leader votes %d, API %d", got, s.Leader.Votes)
	}
	for _, c := range cands.Candidates {
		sel := fmt.Sprintf(`#candidates-table tr[data-candidate-id=%q] .votes`, c.CandidateID)
		if got := digits(text(sel)); got != c.Votes {
			t.Errorf("page votes for %s: %d, API %d", c.CandidateID, got, c.Votes)
		}
	}

	// One region, found through the table's pagination: show 100 rows.
	var ca regionResp
	p.get(t, "/api/v1/regions/CA", &ca)
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("page-size"), "100"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("page-size").dispatchEvent(new Event("change"))`)); err != nil {
		t.Fatal(err)
	}
	if got := digits(text(`#regions-table tr[data-region="CA"] .votes`)); got != ca.VotesCast {
		t.Errorf("page CA votes %d, API %d", got, ca.VotesCast)
	}
	if got := digits(text(`#regions-table tr[data-region="CA"] .registered`)); got != ca.RegisteredVoters {
		t.Errorf("page CA registered %d, API %d", got, ca.RegisteredVoters)
	}
	if got := text(`#map [data-region="CA"]`); !strings.HasPrefix(got, "CA") {
		t.Errorf("map tile for CA reads %q", got)
	}

	// Pagination: 51 regions at 10 a page.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("page-size"), "10"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("page-size").dispatchEvent(new Event("change"))`)); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#regions-table tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows != 10 || text("#page-info") != "Page 1 of 6" {
		t.Errorf("page size 10: %d rows, %q; want 10, Page 1 of 6", rows, text("#page-info"))
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("next-page"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#page-info"); got != "Page 2 of 6" {
		t.Errorf("after next: %q, want Page 2 of 6", got)
	}

	// Sorting: by votes, ascending then descending.
	columnVotes := func() []int64 {
		cells, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#regions-table tbody .votes")].map(c => c.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int64, len(cells))
		for i, c := range cells {
			out[i] = digits(c)
		}
		return out
	}
	sortedBy := func(v []int64, asc bool) bool {
		for i := 1; i < len(v); i++ {
			if (asc && v[i] < v[i-1]) || (!asc && v[i] > v[i-1]) {
				return false
			}
		}
		return true
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sort="votes"]`))); err != nil {
		t.Fatal(err)
	}
	if v := columnVotes(); !sortedBy(v, true) || text("#page-info") != "Page 1 of 6" {
		t.Errorf("sorted ascending by votes: %v (%s)", v, text("#page-info"))
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sort="votes"]`))); err != nil {
		t.Fatal(err)
	}
	ariaSort, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('button[data-sort="votes"]').parentElement.getAttribute("aria-sort")`))
	if err != nil {
		t.Fatal(err)
	}
	if v := columnVotes(); !sortedBy(v, false) || ariaSort != "descending" {
		t.Errorf("sorted descending by votes: %v, aria-sort %q", v, ariaSort)
	}

	// Live: more votes arrive and the page follows without a reload. A
	// keyboard user on a map tile stays there, and the page stays where it
	// was scrolled: a push updates the page in place.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`),
		chromedp.Focus(chromedp.CSS(`#map [data-region="CA"]`)),
		chromedp.Evaluate[chromedp.Void](`document.activeElement.__beforePush = true; window.__scrollY = window.scrollY`)); err != nil {
		t.Fatal(err)
	}
	publishElection(t, p.kafka, e, plan, false, 300)
	waitText("#votes-cast", func(s string) bool { return digits(s) == 900 }, "the page to follow to 900 votes over SSE")
	if still, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__notReloaded === true`)); err != nil || !still {
		t.Errorf("the page reloaded (%v) instead of updating live", err)
	}
	focus, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.activeElement.dataset.region || document.activeElement.tagName) +
		(document.activeElement.__beforePush ? " (the same node)" : " (a new node)") + (window.scrollY === window.__scrollY ? "" : " scrolled")`))
	if err != nil || focus != "CA (the same node)" {
		t.Errorf("after a push the focus is on %q (%v), want the CA tile it was on, unscrolled", focus, err)
	}
	if tip := text("#map-tip"); !strings.HasPrefix(tip, "CA: ") {
		t.Errorf("the map's description reads %q, want the focused tile's", tip)
	}
	// Tiles are buttons, and keep the button role: none overrides it.
	if roles, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#map [role], #map .tile:not(button)").length`)); err != nil || roles != 0 {
		t.Errorf("%d map tiles are not plain buttons (%v)", roles, err)
	}
	if got := text("#connection"); got != "live" {
		t.Errorf("connection status %q, want live", got)
	}

	// Every control is reachable by keyboard: sort headers, pager and map
	// tiles are buttons, so Tab reaches them.
	nonButtons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#map .tile, #regions-table th button")].filter(e => e.tagName !== "BUTTON" || e.tabIndex < 0).length`))
	if err != nil || nonButtons != 0 {
		t.Errorf("%d map tiles or sort headers are not focusable buttons (%v)", nonButtons, err)
	}

	screenshot(t, ctx)

	// Readable at 1366×768 and on a phone: nothing wider than the screen.
	for _, w := range []int64{1366, 390} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 800)); err != nil {
			t.Fatal(err)
		}
		overflow, err := chromedp.Run(ctx, chromedp.Evaluate[int](
			`new Promise(r => requestAnimationFrame(() => r(document.documentElement.scrollWidth - window.innerWidth)))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if overflow > 0 {
			t.Errorf("at %d px wide the page scrolls sideways by %d px", w, overflow)
		}
	}
}

func waitForVotes(t *testing.T, p *pipeline, n int64) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, fmt.Sprintf("%d votes projected", n), func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast == n, fmt.Sprintf("%+v", s)
	})
}

// screenshot saves the page, full length, to $VOTEWATCH_SCREENSHOT (the
// README's picture is made this way) or to the test's temp dir.
func screenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	path := os.Getenv("VOTEWATCH_SCREENSHOT")
	switch {
	case path == "":
		path = filepath.Join(t.TempDir(), "dashboard.png")
	case !filepath.IsAbs(path):
		// Relative to the repository's root, where the README's command
		// runs, not to this package's directory, where the test does.
		path = filepath.Join("..", "..", path)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 10_000 {
		t.Fatalf("screenshot is only %d bytes", len(png))
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s", path)
}

func TestDashboardReconnectsAfterServerRestart(t *testing.T) {
	p := startPipeline(t, 4)
	e, err := simulator.Generate(simulator.OneRaceElection(), 200, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plan := simulator.NewVotePlan(e, simulator.Faults{})
	publishElection(t, p.kafka, e, plan, true, 50)
	waitForVotes(t, p, 50)

	// A second server over the same database, which this test restarts.
	srv, err := newHTTPServer(testLogger(), "127.0.0.1:0", p.pool, nil, metrics.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	ctx1, stop1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() { _ = srv.Run(ctx1); close(done1) }()

	ctx := browser(t)
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/"), chromedp.WaitVisible(chromedp.ID("votes-cast")),
		chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "page live with 50 votes", func() (bool, string) {
		return digits(text("#votes-cast")) == 50 && text("#connection") == "live", text("#connection")
	})

	stop1()
	<-done1
	testutil.Eventually(t, 20*time.Second, "page to notice the server is gone", func() (bool, string) {
		s := text("#connection")
		return s != "live", s
	})
	publishElection(t, p.kafka, e, plan, false, 25)
	waitForVotes(t, p, 75)

	srv2, err := newHTTPServer(testLogger(), addr, p.pool, nil, metrics.New(), nil)
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	go func() { _ = srv2.Run(ctx2) }()
	testutil.Eventually(t, 30*time.Second, "page to reconnect and show 75 votes", func() (bool, string) {
		return digits(text("#votes-cast")) == 75 && text("#connection") == "live", text("#votes-cast") + " " + text("#connection")
	})
	if still, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__notReloaded === true`)); err != nil || !still {
		t.Errorf("the page reloaded (%v) instead of reconnecting", err)
	}
}
