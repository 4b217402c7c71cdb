package systemtest

import (
	"context"
	"encoding/json"
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

	"github.com/ThreeDotsLabs/watermill"
	"github.com/chromedp/chromedp"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
)

// browser starts headless Chromium (Debian's chromium package) with a fresh
// profile and no background traffic, for at most three minutes.
func browser(t *testing.T) context.Context {
	t.Helper()
	return browserFor(t, 3*time.Minute)
}

// browserFor is browser for at most d.
func browserFor(t *testing.T, d time.Duration) context.Context {
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
	ctx, cancelTimeout := context.WithTimeout(ctx, d)
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

	// Every control is reachable by keyboard: sort headers and pager are
	// buttons Tab reaches; the map is one tab stop (its tiles are buttons
	// reached with the arrow keys: TestDashboardIsAccessible).
	nonButtons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#map .tile, #regions-table th button")].filter(e => e.tagName !== "BUTTON" || (!e.closest("#map") && e.tabIndex < 0)).length`))
	if err != nil || nonButtons != 0 {
		t.Errorf("%d map tiles or sort headers are not focusable buttons (%v)", nonButtons, err)
	}
	if stops, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#map .tile[tabindex='0']").length`)); err != nil || stops != 1 {
		t.Errorf("%d map tiles in the tab order, want one (%v)", stops, err)
	}

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
	srv, err := app.NewAPIServer(testLogger(), "127.0.0.1:0", p.pool, nil, metrics.New(), nil, 1)
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

	srv2, err := app.NewAPIServer(testLogger(), addr, p.pool, nil, metrics.New(), nil, 1)
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

// contestResp is GET /api/v1/contests/{id}, as far as the page shows it.
type contestResp struct {
	ContestID  string `json:"contest_id"`
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Candidates []struct {
		CandidateID string `json:"candidate_id"`
		Name        string `json:"name"`
		Votes       int64  `json:"votes"`
	} `json:"candidates"`
	Regions []struct {
		Region         string `json:"region"`
		EligibleVoters int64  `json:"eligible_voters"`
		VotesCast      int64  `json:"votes_cast"`
		Decided        bool   `json:"decided"`
		Reporting      struct {
			Available      bool  `json:"available"`
			StationsClosed int64 `json:"stations_closed"`
			Stations       int64 `json:"stations"`
		} `json:"reporting"`
	} `json:"regions"`
	Rejected          map[string]int64 `json:"rejected"`
	EligibleVoters    int64            `json:"eligible_voters"`
	VotesCast         int64            `json:"votes_cast"`
	Decided           bool             `json:"decided"`
	DecidedAt         *time.Time       `json:"decided_at"`
	WinnerCandidateID *string          `json:"winner_candidate_id"`
	Reporting         struct {
		Available      bool  `json:"available"`
		StationsClosed int64 `json:"stations_closed"`
		Stations       int64 `json:"stations"`
	} `json:"reporting"`
}

// smallGeneralElection is the one-race election plus, in California, a
// lopsided Senate race (so that it is decided before the last vote) and a
// Yes/No measure.
func smallGeneralElection() simulator.ElectionConfig {
	cfg := simulator.OneRaceElection()
	cfg.Contests = []simulator.ContestConfig{
		{ContestID: "senate-CA", Name: "U.S. Senate (CA)", Kind: "candidate", Regions: []string{"CA"}, Candidates: []simulator.CandidateConfig{
			{CandidateID: "s-ca-civic", Party: "Civic Alliance", Popularity: 1},
			{CandidateID: "s-ca-liberty", Party: "Liberty Union", Popularity: 0.1},
		}},
		{ContestID: "measure-CA", Name: "Proposition 1: Clean water bond (CA)", Kind: "measure", Regions: []string{"CA"}, Candidates: []simulator.CandidateConfig{
			{CandidateID: "measure-CA-yes", Name: "Yes", Popularity: 1},
			{CandidateID: "measure-CA-no", Name: "No", Popularity: 0.9},
		}},
	}
	return cfg
}

// castVote is a published vote's ids.
type castVote struct {
	VoteID  string `json:"vote_id"`
	VoterID string `json:"voter_id"`
}

// publishVotes publishes the plan's next n ballots and returns each
// ballot's vote in the default contest.
func publishVotes(t *testing.T, cfg kafka.Config, plan *simulator.VotePlan, n int) []castVote {
	t.Helper()
	pub, err := kafka.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ids := make([]castVote, 0, n)
	for range n {
		msgs, ok := plan.Next(time.Now())
		if !ok {
			t.Fatal("the plan ran out of votes")
		}
		var v castVote
		if err := json.Unmarshal(msgs[0].Payload, &v); err != nil || v.VoteID == "" || v.VoterID == "" {
			t.Fatalf("the plan's vote %s has no vote_id or voter_id (%v)", msgs[0].Payload, err)
		}
		ids = append(ids, v)
		if err := pub.Publish(domain.TopicVotes, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// publishTestEvents publishes events to topic.
func publishTestEvents[E kafka.Event](t *testing.T, cfg kafka.Config, topic string, events []E) {
	t.Helper()
	pub, err := kafka.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, ev := range events {
		m, err := kafka.EventMessage(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDashboardContestPickerAndBallotBox(t *testing.T) {
	p := startPipeline(t, 4)
	e, err := simulator.Generate(smallGeneralElection(), 1500, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plan := simulator.NewVotePlan(e, simulator.Faults{})
	publishElection(t, p.kafka, e, plan, true, 0)
	first := plan.Total() - 100
	votes := publishVotes(t, p.kafka, plan, first)
	// A second vote by the first voter: rejected, a duplicate.
	second, err := domain.NewVote(watermill.NewUUID(), votes[0].VoterID, "c-civic", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	publishTestEvents(t, p.kafka, domain.TopicVotes, []domain.VoteCast{{Vote: second}})
	waitForVotes(t, p, int64(first))
	p.waitQuiet(t, "test-projector")

	ctx := browser(t)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return s
	}
	waitFor := func(what string, ok func() (bool, string)) {
		t.Helper()
		testutil.Eventually(t, 20*time.Second, what, ok)
	}
	pick := func(id string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("contest")), chromedp.SetValue(chromedp.ID("contest"), id),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("contest").dispatchEvent(new Event("change"))`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(p.api+"/"), chromedp.WaitVisible(chromedp.ID("votes-cast"))); err != nil {
		t.Fatal(err)
	}
	waitFor(fmt.Sprintf("the page to show %d votes", first), func() (bool, string) {
		s := text("#votes-cast")
		return digits(s) == int64(first), s
	})

	// The picker lists the API's contests in its order, the main race first.
	var list struct {
		Contests []struct {
			ContestID string `json:"contest_id"`
		} `json:"contests"`
	}
	p.get(t, "/api/v1/contests", &list)
	var want []string
	for _, c := range list.Contests {
		want = append(want, c.ContestID)
	}
	waitFor("the picker to list every contest", func() (bool, string) {
		got := eval(`[...document.getElementById("contest").options].map(o => o.value).join(",")`)
		return got == strings.Join(want, ","), got
	})
	if want[0] != "default" || len(want) != 3 {
		t.Fatalf("contests %v, want default first and three in all", want)
	}
	if got := eval(`document.querySelector('#contest option[value="default"]').textContent`); !strings.HasPrefix(got, "Main race") {
		t.Errorf("the default contest's option reads %q, want the main race", got)
	}

	// The Senate race: its figures, its one region, the rest greyed.
	var senate contestResp
	p.get(t, "/api/v1/contests/senate-CA", &senate)
	if !senate.Decided || senate.DecidedAt == nil || senate.WinnerCandidateID == nil {
		t.Fatalf("the lopsided Senate race is not decided: %+v", senate)
	}
	pick("senate-CA")
	checkContest := func(c contestResp) {
		t.Helper()
		waitFor("the page to show "+c.ContestID, func() (bool, string) {
			s := text("#votes-cast") + " " + text("#registered-voters")
			return digits(text("#votes-cast")) == c.VotesCast && digits(text("#registered-voters")) == c.EligibleVoters, s
		})
		for _, cand := range c.Candidates {
			sel := fmt.Sprintf(`#candidates-table tr[data-candidate-id=%q] .votes`, cand.CandidateID)
			if got := digits(text(sel)); got != cand.Votes {
				t.Errorf("%s: page votes for %s %d, API %d", c.ContestID, cand.CandidateID, got, cand.Votes)
			}
		}
		if got := eval(`[...document.querySelectorAll("#regions-table tbody tr")].map(r => r.dataset.region).join(",")`); got != "CA" {
			t.Errorf("%s: the regions table lists %q, want CA alone", c.ContestID, got)
		}
		r := c.Regions[0]
		if got := digits(text(`#regions-table tr[data-region="CA"] .votes`)); got != r.VotesCast {
			t.Errorf("%s: page CA votes %d, API %d", c.ContestID, got, r.VotesCast)
		}
		wantRep := fmt.Sprintf("%d of %d", r.Reporting.StationsClosed, r.Reporting.Stations)
		if !r.Reporting.Available {
			wantRep = "no stations registered"
		}
		if got := text(`#regions-table tr[data-region="CA"] .reporting`); got != wantRep {
			t.Errorf("%s: CA reporting %q, want %q", c.ContestID, got, wantRep)
		}
		if got, decided := text(`#regions-table tr[data-region="CA"] .decided`), strings.Contains(text(`#regions-table tr[data-region="CA"] .decided`), "Decided"); decided != r.Decided {
			t.Errorf("%s: CA decided reads %q, API says %v", c.ContestID, got, r.Decided)
		}
		tiles := eval(`[...document.querySelectorAll("#map .tile")].map(b => b.dataset.region + "=" + (b.getAttribute("aria-disabled") || "")).filter(s => s === "CA=" || s === "TX=true" || s === "NY=true").sort().join(",")`)
		if tiles != "CA=,NY=true,TX=true" {
			t.Errorf("%s: map tiles %q, want CA enabled and the others disabled", c.ContestID, tiles)
		}
		badge := text("#contest-decided")
		switch {
		case c.Decided && c.DecidedAt != nil:
			at := c.DecidedAt.Local().Format("15:04")
			if !strings.HasPrefix(badge, "Decided at ") || !strings.Contains(badge, at) && !strings.Contains(badge, c.DecidedAt.Local().Format("3:04")) {
				t.Errorf("%s: the badge reads %q, want decided at %s", c.ContestID, badge, at)
			}
		case c.Decided:
			if !strings.HasPrefix(badge, "Decided") {
				t.Errorf("%s: the badge reads %q, want decided", c.ContestID, badge)
			}
		default:
			if badge != "Not decided yet" {
				t.Errorf("%s: the badge reads %q, want not decided", c.ContestID, badge)
			}
		}
		if title := eval(`document.getElementById("contest-decided").title`); !strings.Contains(title, "not a race call") {
			t.Errorf("the badge's tooltip reads %q", title)
		}
		rep := text("#contest-reporting")
		if c.Reporting.Available && !strings.Contains(rep, fmt.Sprintf("%d of %d", c.Reporting.StationsClosed, c.Reporting.Stations)) ||
			!c.Reporting.Available && !strings.Contains(rep, "no stations registered") {
			t.Errorf("%s: reporting reads %q, API %+v", c.ContestID, rep, c.Reporting)
		}
	}
	checkContest(senate)
	if got := text("#leader-name"); got != senate.Candidates[0].Name {
		t.Errorf("the Senate race's leader reads %q, want %q", got, senate.Candidates[0].Name)
	}

	// More votes: the picked contest follows in place, the picker keeps the
	// keyboard focus.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("contest")), chromedp.Evaluate[chromedp.Void](`document.activeElement.__before = true`)); err != nil {
		t.Fatal(err)
	}
	publishVotes(t, p.kafka, plan, 100)
	waitForVotes(t, p, int64(plan.Total()))
	p.waitQuiet(t, "test-projector")
	p.get(t, "/api/v1/contests/senate-CA", &senate)
	checkContest(senate)
	if got := eval(`document.activeElement.id + (document.activeElement.__before ? "" : " (a new node)") + " " + document.activeElement.value`); got != "contest senate-CA" {
		t.Errorf("after new votes the focus is on %q, want the picker, on senate-CA", got)
	}

	// A measure is a Yes/No bar.
	var measure contestResp
	p.get(t, "/api/v1/contests/measure-CA", &measure)
	pick("measure-CA")
	checkContest(measure)
	var yes, no int64
	for _, c := range measure.Candidates {
		switch c.Name {
		case "Yes":
			yes = c.Votes
		case "No":
			no = c.Votes
		}
	}
	if yes+no == 0 {
		t.Fatalf("no votes on the measure: %+v", measure)
	}
	bar := eval(`(() => { const m = document.getElementById("measure"); const [y, n] = document.getElementById("measure-bar").children;
		return [m.hidden, document.getElementById("candidate-cards").hidden, m.dataset.yes, m.dataset.no, y.style.width, n.style.width].join(" "); })()`)
	wantBar := fmt.Sprintf("false true %d %d %.2f%% %.2f%%", yes, no, 100*float64(yes)/float64(yes+no), 100*float64(no)/float64(yes+no))
	if bar != wantBar {
		t.Errorf("the measure's bar: %q, want %q (hidden, cards hidden, yes, no, widths)", bar, wantBar)
	}
	if got := text("#measure-yes"); !strings.HasPrefix(got, "Yes ") || !strings.Contains(got, fmt.Sprintf("%d votes", yes)) {
		t.Errorf("the Yes label reads %q, want %d votes", got, yes)
	}

	// Track a ballot: a vote never cast, then a real one.
	check := func(id, want string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("ballot-id"), id), chromedp.Click(chromedp.ID("ballot-check"))); err != nil {
			t.Fatal(err)
		}
		var got string
		waitFor("the ballot box to answer "+want, func() (bool, string) {
			got = eval(`document.getElementById("ballot-status").dataset.status || ""`)
			return got == want, got + ": " + text("#ballot-status")
		})
		return text("#ballot-status")
	}
	if got := check("6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab", "not_found"); !strings.HasPrefix(got, "Not found") {
		t.Errorf("an unknown vote reads %q", got)
	}
	if got := check(second.ID(), "rejected"); got != "Rejected: Duplicate voter." {
		t.Errorf("a duplicate vote reads %q, want it rejected as a duplicate voter", got)
	}
	if got := check(votes[0].VoteID, "counted"); !strings.HasPrefix(got, "Counted") {
		t.Errorf("a counted vote reads %q", got)
	}

	// Polls close at some stations (CA's among them): reporting follows.
	var closing []domain.StationReported
	for i, rep := range e.StationReports(true, time.Now()) {
		if i%3 == 0 || rep.Station().Region().String() == "CA" {
			closing = append(closing, rep)
		}
	}
	publishTestEvents(t, p.kafka, domain.TopicStations, closing)
	var main contestResp
	testutil.Eventually(t, 20*time.Second, "the stations' closing projected", func() (bool, string) {
		p.get(t, "/api/v1/contests/default", &main)
		return main.Reporting.StationsClosed == int64(len(closing)), fmt.Sprintf("%+v", main.Reporting)
	})
	p.get(t, "/api/v1/contests/measure-CA", &measure)
	waitFor("the measure's stations closed", func() (bool, string) {
		s := text("#contest-reporting")
		return strings.Contains(s, "1 of 1"), s
	})
	checkContest(measure)

	// Back to the main race: the whole dashboard, with its decided badge.
	pick("default")
	waitFor("the main race again", func() (bool, string) {
		s := text("#votes-cast")
		return digits(s) == main.VotesCast && eval(`String(document.getElementById("timeline-card").hidden)`) == "false", s
	})
	// The main race's figures come from the pushed dashboard at once; its
	// status line waits for the contest's own answer.
	waitFor(fmt.Sprintf("main race reporting %d of %d", len(closing), main.Reporting.Stations), func() (bool, string) {
		s := text("#contest-reporting")
		return strings.Contains(s, fmt.Sprintf("%d of %d", len(closing), main.Reporting.Stations)), s
	})
	if got := text("#registered-voters"); digits(got) != main.EligibleVoters {
		t.Errorf("main race registered %q, API %d", got, main.EligibleVoters)
	}
	if got := eval(`document.querySelectorAll("#regions-table tbody tr").length + " " + document.querySelectorAll("#map .tile.out").length`); got != "25 0" {
		t.Errorf("main race: %q regions table rows and greyed tiles, want 25 0", got)
	}
	screenshot(t, ctx)

	// The picker, with a long contest name, and the ballot box fit a phone.
	pick("measure-CA")
	checkContest(measure)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 800)); err != nil {
		t.Fatal(err)
	}
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		`new Promise(r => requestAnimationFrame(() => r(document.documentElement.scrollWidth - window.innerWidth)))`, chromedp.EvalAwaitPromise))
	if err != nil || overflow > 0 {
		t.Errorf("at 390 px wide, with a measure picked, the page scrolls sideways by %d px (%v)", overflow, err)
	}

	// Past the per-address budget of lookups, the box says to slow down.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`Promise.all(Array.from({length: 40}, () => fetch("/api/v1/ballots/6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab")))`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	if got := check(votes[0].VoteID, "slow_down"); !strings.HasPrefix(got, "Slow down") {
		t.Errorf("a rate-limited lookup reads %q", got)
	}
}
