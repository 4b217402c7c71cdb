package systemtest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/testutil"
)

// axeTags are the rule sets the dashboard is held to: WCAG 2.0, 2.1 and 2.2
// at levels A and AA (2.2 AA covers 2.1 AA, which the ADA Title II rule and
// Section 508 ask of public results), plus axe's best practices.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"}

// maxTabStops is the most Tab presses it may take to cross the dashboard.
const maxTabStops = 30

// TestDashboardIsAccessible holds the live dashboard, over the built-in
// general election, to WCAG 2.2 AA as far as a machine can check it: axe-core
// finds no violation with the main race or any other contest picked, the
// page reflows to 320 px, Tab crosses it in at most 30 stops in a sensible
// order, the map is one stop with arrow keys inside, the sort headers sort
// on Enter, the map's tiles meet contrast by the WCAG ratio, and the page
// announces only a changed leader or a decided race, never a push or a
// hover.
func TestDashboardIsAccessible(t *testing.T) {
	axeSource, err := os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
	if err != nil {
		t.Fatalf("read the vendored axe-core: %v", err)
	}
	p := startPipeline(t, 4)
	e, err := simulator.Generate(simulator.DefaultElection(), 2500, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plan := simulator.NewVotePlan(e, simulator.Faults{})
	publishElection(t, p.kafka, e, plan, true, 0)
	first := plan.Total() * 2 / 5
	publishVotes(t, p.kafka, plan, first)
	waitForVotes(t, p, int64(first))
	p.waitQuiet(t, "test-projector")

	// axe-core over every contest takes a while on a busy machine.
	ctx := browserFor(t, 8*time.Minute)
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return s
	}
	keys := func(k string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.KeyEvent(k)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, ok func() (bool, string)) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, what, ok)
	}
	var list struct {
		Contests []struct {
			ContestID string `json:"contest_id"`
			Name      string `json:"name"`
		} `json:"contests"`
	}
	p.get(t, "/api/v1/contests", &list)
	// ready says the page shows contest id with its own figures: the
	// picker on it, nothing loading, the contest's status line filled.
	ready := func(id string) {
		t.Helper()
		waitFor("the page to show "+id, func() (bool, string) {
			s := eval(fmt.Sprintf(`(() => {
				const busy = document.getElementById("main").getAttribute("aria-busy") === "true";
				const status = document.getElementById("contest-decided").textContent;
				const options = document.getElementById("contest").options.length;
				return [document.getElementById("contest").value === %q, !busy, status !== "—", options === %d, document.getElementById("votes-cast").textContent].join(" ");
			})()`, id, len(list.Contests)))
			return strings.HasPrefix(s, "true true true true"), s
		})
	}
	pick := func(id string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("contest"), id),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("contest").dispatchEvent(new Event("change"))`)); err != nil {
			t.Fatal(err)
		}
		ready(id)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(p.api+"/"), chromedp.WaitVisible(chromedp.ID("votes-cast"))); err != nil {
		t.Fatal(err)
	}
	ready("default")
	waitFor("the page to show the votes", func() (bool, string) {
		s := eval(`document.getElementById("votes-cast").textContent`)
		return digits(s) == int64(first), s
	})

	// Every change to a live region from here on is recorded: the page
	// may speak of a changed leader or a decided race, and of nothing else.
	eval(`(() => {
		window.__spoken = [];
		const live = '[aria-live]:not([aria-live="off"]), [role="status"], [role="alert"], [role="log"], output';
		const observer = new MutationObserver((records) => {
			for (const r of records) {
				const target = r.target.nodeType === Node.ELEMENT_NODE ? r.target : r.target.parentElement;
				const region = target && target.closest(live);
				if (region) window.__spoken.push({ at: performance.now(), text: (region.id || region.tagName) + ": " + region.textContent.trim() });
				if (target && target.closest("#votes-cast")) window.__pushes++;
			}
		});
		window.__pushes = 0;
		observer.observe(document.body, { subtree: true, childList: true, characterData: true });
		return "";
	})()`)
	// spoken is what the live regions said, in order, with when (ms).
	type utterance struct {
		At   float64
		Text string
	}
	said := func() []utterance {
		t.Helper()
		var out []utterance
		if err := json.Unmarshal([]byte(eval(`JSON.stringify(window.__spoken)`)), &out); err != nil {
			t.Fatal(err)
		}
		// One change can be seen as several mutations.
		return slices.CompactFunc(out, func(a, b utterance) bool { return a.Text == b.Text })
	}
	spoken := func() []string {
		t.Helper()
		var out []string
		for _, u := range said() {
			out = append(out, u.Text)
		}
		return out
	}

	// axe-core runs in the page, injected over the DevTools protocol (the
	// page's own policy allows no foreign script).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](string(axeSource))); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	if v := eval(`axe.version`); !strings.HasPrefix(v, "4.") {
		t.Fatalf("axe-core version %q", v)
	}
	tags, _ := json.Marshal(axeTags)
	audit := func(what string) {
		t.Helper()
		out := eval(`axe.run(document, { runOnly: { type: "tag", values: ` + string(tags) + ` }, resultTypes: ["violations"] })
			.then((r) => JSON.stringify(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
				nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary.replaceAll("\n", " ")) }))))`)
		var violations []struct {
			ID, Impact, Help string
			Nodes            []string
		}
		if err := json.Unmarshal([]byte(out), &violations); err != nil {
			t.Fatalf("axe-core's answer %q: %v", out, err)
		}
		for _, v := range violations {
			shown := v.Nodes
			if len(shown) > 4 {
				shown = append(shown[:4:4], fmt.Sprintf("… and %d more", len(v.Nodes)-4))
			}
			t.Errorf("%s: axe %s (%s, %d nodes): %s\n\t%s", what, v.ID, v.Impact, len(v.Nodes), v.Help, strings.Join(shown, "\n\t"))
		}
	}

	audit("main race")
	checkTileContrast(t, eval, "main race")

	// Tab from the top of the page: at most 30 stops, the picker, the
	// ballot box, the map (one stop) and the sort headers in that order.
	eval(`(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return ""; })()`)
	where := `(() => { const e = document.activeElement;
		if (!e || e === document.body || e === document.documentElement) return "";
		if (e.closest("#map")) return "map:" + (e.dataset.region || e.id);
		if (e.dataset.sort) return "sort:" + e.dataset.sort;
		if (e.id) return "#" + e.id;
		return e.tagName.toLowerCase() + ":" + (e.getAttribute("name") || e.textContent.trim().slice(0, 24)); })()`
	var stops []string
	for range 200 {
		keys(kb.Tab)
		at := eval(where)
		if at == "" && len(stops) > 0 || len(stops) > 0 && at == stops[0] {
			break
		}
		if at != "" {
			stops = append(stops, at)
		}
	}
	t.Logf("%d tab stops: %s", len(stops), strings.Join(stops, " "))
	if len(stops) > maxTabStops {
		t.Errorf("%d tab stops cross the page, want at most %d", len(stops), maxTabStops)
	}
	index := func(prefix string) int {
		return slices.IndexFunc(stops, func(s string) bool { return strings.HasPrefix(s, prefix) })
	}
	picker, ballot, mapAt, sortAt := index("#contest"), index("#ballot-id"), index("map:"), index("sort:")
	if picker < 0 || ballot < picker || mapAt < ballot || sortAt < mapAt {
		t.Errorf("tab order: picker %d, ballot box %d, map %d, sort headers %d; want all four, in that order", picker, ballot, mapAt, sortAt)
	}
	mapStops := 0
	sorts := 0
	for _, s := range stops {
		if strings.HasPrefix(s, "map:") {
			mapStops++
		}
		if strings.HasPrefix(s, "sort:") {
			sorts++
		}
	}
	if mapStops != 1 || sorts != 8 {
		t.Errorf("%d map stops and %d sort headers on the way, want 1 and 8", mapStops, sorts)
	}

	// Inside the map, arrow keys move between states as they lie; Enter
	// on a state shows its row in the table.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`#map [data-region="CA"]`))); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ name, key, want string }{
		{"", "", "map:CA"}, {"right", kb.ArrowRight, "map:UT"}, {"down", kb.ArrowDown, "map:AZ"}, {"up", kb.ArrowUp, "map:UT"},
		{"left", kb.ArrowLeft, "map:CA"}, {"up", kb.ArrowUp, "map:OR"}, {"Home", kb.Home, "map:AK"}, {"End", kb.End, "map:FL"},
	} {
		if step.key != "" {
			keys(step.key)
		}
		if got := eval(where); got != step.want {
			t.Errorf("after %s in the map the focus is on %q, want %q", step.name, got, step.want)
		}
	}
	if got := eval(`[...document.querySelectorAll("#map .tile")].filter((b) => b.tabIndex >= 0).map((b) => b.dataset.region).join(",")`); got != "FL" {
		t.Errorf("map tiles in the tab order: %q, want the focused one alone (FL)", got)
	}
	keys(kb.Enter)
	if got := eval(`document.activeElement.closest("tr") ? document.activeElement.closest("tr").dataset.region : document.activeElement.tagName`); got != "FL" {
		t.Errorf("Enter on FL in the map moved the focus to %q, want FL's row in the table", got)
	}
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`#map [data-region="FL"]`))); err != nil {
		t.Fatal(err)
	}
	keys(kb.Tab)
	if got := eval(where); strings.HasPrefix(got, "map:") {
		t.Errorf("Tab from the map stays in it, on %q", got)
	}

	// Hovering and focusing tiles says nothing.
	for _, region := range []string{"TX", "NY", "WA"} {
		box := eval(fmt.Sprintf(`JSON.stringify(document.querySelector('#map [data-region=%q]').getBoundingClientRect())`, region))
		var r struct{ X, Y, Width, Height float64 }
		if err := json.Unmarshal([]byte(box), &r); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.MouseEvent(chromedp.MouseMoved, r.X+r.Width/2, r.Y+r.Height/2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`#map [tabindex="0"]`))); err != nil {
		t.Fatal(err)
	}
	keys(kb.ArrowLeft + kb.ArrowUp)
	if said := spoken(); len(said) > 0 {
		t.Errorf("hovering and moving over the map announced %q", said)
	}

	// Enter on a sort header sorts by it.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`button[data-sort="votes"]`))); err != nil {
		t.Fatal(err)
	}
	sorted := `document.querySelector('button[data-sort="votes"]').closest("th").getAttribute("aria-sort") || ""`
	keys(kb.Enter)
	if got := eval(sorted); got != "ascending" {
		t.Errorf("after Enter on the Votes header, aria-sort %q, want ascending", got)
	}
	keys(kb.Enter)
	if got := eval(sorted); got != "descending" {
		t.Errorf("after Enter again, aria-sort %q, want descending", got)
	}

	// Reflow: at 320 px nothing scrolls sideways (data tables may scroll
	// in their own box), and axe finds nothing there either.
	reflow := func(what string) {
		t.Helper()
		overflow, err := chromedp.Run(ctx, chromedp.Evaluate[int](
			`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(document.documentElement.scrollWidth - window.innerWidth))))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if overflow > 0 {
			wide := eval(`[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !e.closest(".scroll"))
				.slice(0, 6).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + [...e.classList].join(".") + " " + Math.round(e.getBoundingClientRect().right)).join(", ")`)
			t.Errorf("%s: at 320 px wide the page scrolls sideways by %d px (%s)", what, overflow, wide)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(320, 800)); err != nil {
		t.Fatal(err)
	}
	reflow("main race")
	audit("main race at 320 px")
	checkTileContrast(t, eval, "main race at 320 px")

	// With motion reduced, nothing on the page moves.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := eval(`(() => { const main = document.getElementById("main"); main.classList.add("loading");
		const moving = [...document.querySelectorAll("*")].filter((e) => { const s = getComputedStyle(e);
			return s.transitionDuration.split(",").some((d) => parseFloat(d) > 0) || s.animationName !== "none"; }).map((e) => e.id || e.tagName).join(",");
		main.classList.remove("loading");
		return moving; })()`); got != "" {
		t.Errorf("with prefers-reduced-motion, these still move: %s", got)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 768)); err != nil {
		t.Fatal(err)
	}

	// A changed leader is announced, once: the runner-up gets enough of
	// the next voters' votes to lead.
	var cands struct {
		Candidates []struct {
			CandidateID string `json:"candidate_id"`
			Name        string `json:"name"`
			Votes       int64  `json:"votes"`
		} `json:"candidates"`
	}
	p.get(t, "/api/v1/candidates", &cands)
	lead := cands.Candidates[0].Votes - cands.Candidates[1].Votes
	runnerUp := cands.Candidates[1]
	var swing []domain.VoteCast
	for range lead + 5 {
		msgs, ok := plan.Next(time.Now())
		if !ok {
			t.Fatal("the plan ran out of voters")
		}
		var v castVote
		if err := json.Unmarshal(msgs[0].Payload, &v); err != nil {
			t.Fatal(err)
		}
		vote, err := domain.NewVote(watermill.NewUUID(), v.VoterID, runnerUp.CandidateID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		swing = append(swing, domain.VoteCast{Vote: vote})
	}
	publishTestEvents(t, p.kafka, domain.TopicVotes, swing)
	waitFor(runnerUp.Name+" leading on the page", func() (bool, string) {
		s := eval(`document.getElementById("leader-name").textContent`)
		return s == runnerUp.Name, s
	})
	waitFor("the new leader announced", func() (bool, string) {
		said := spoken()
		return len(said) > 0 && strings.Contains(said[len(said)-1], runnerUp.Name), fmt.Sprint(said)
	})
	if said := spoken(); len(said) != 1 || !regexp.MustCompile(`^announcer: .*`+regexp.QuoteMeta(runnerUp.Name)+` now leads`).MatchString(said[0]) {
		t.Errorf("after the leader changed the page said %q, want one polite announcement of %s leading", said, runnerUp.Name)
	}

	// Every contest passes axe too.
	for _, c := range list.Contests[1:] {
		pick(c.ContestID)
		audit(c.ContestID)
		checkTileContrast(t, eval, c.ContestID)
		// The map's one stop is on a state in the contest, not a greyed one.
		if got := eval(`[...document.querySelectorAll('#map .tile[tabindex="0"]')].map((b) => b.dataset.region + (b.getAttribute("aria-disabled") === "true" ? " (not in the contest)" : "")).join(",")`); strings.Contains(got, "not in") || strings.Contains(got, ",") || got == "" {
			t.Errorf("%s: the map's tab stop is %q, want one state in the contest", c.ContestID, got)
		}
	}
	pick(list.Contests[len(list.Contests)-1].ContestID)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(320, 800)); err != nil {
		t.Fatal(err)
	}
	reflow(list.Contests[len(list.Contests)-1].ContestID)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 768)); err != nil {
		t.Fatal(err)
	}
	if said := spoken(); len(said) != 1 {
		t.Errorf("after picking contests the page had said %q; the picker's own change needs no announcement", said)
	}

	// The rest of the voters vote: the contests this decides are
	// announced together, and the page says nothing else but a changed
	// leader however many pushes it takes.
	pick("default")
	decided := func() map[string]bool {
		var l struct {
			Contests []struct {
				ContestID string `json:"contest_id"`
				Decided   bool   `json:"decided"`
			} `json:"contests"`
		}
		p.get(t, "/api/v1/contests", &l)
		out := map[string]bool{}
		for _, c := range l.Contests {
			if c.Decided {
				out[c.ContestID] = true
			}
		}
		return out
	}
	before := decided()
	pushes := eval(`String(window.__pushes)`)
	publishVotes(t, p.kafka, plan, plan.Total()-first-len(swing))
	p.waitQuiet(t, "test-projector")
	var newly []string
	for id := range decided() {
		if !before[id] {
			newly = append(newly, id)
		}
	}
	if len(newly) == 0 {
		t.Fatalf("no contest became decided with the last votes (decided before: %v)", before)
	}
	waitFor(fmt.Sprintf("the decision of %v announced", newly), func() (bool, string) {
		said := spoken()
		return len(said) > 1 && strings.Contains(said[len(said)-1], "decided"), fmt.Sprint(said)
	})
	audit("main race, every vote in")
	all := said()
	t.Logf("announced over the election: %q; %s pushes of the figures before the last votes, %s after", spoken(), pushes, eval(`String(window.__pushes)`))
	decisions := 0
	for i, u := range all {
		if !strings.HasPrefix(u.Text, "announcer: ") || !strings.Contains(u.Text, "now leads") && !strings.Contains(u.Text, "decided") {
			t.Errorf("the page said %q: neither a new leader nor a decision", u.Text)
		}
		if strings.Contains(u.Text, "decided") {
			decisions++
		}
		// Rare: news that comes faster waits and is said together.
		if i > 0 && u.At-all[i-1].At < 9000 {
			t.Errorf("announcements %.1f s apart: %q, then %q", (u.At-all[i-1].At)/1000, all[i-1].Text, u.Text)
		}
	}
	if decisions > 2 {
		t.Errorf("the decisions took %d announcements, want them said together", decisions)
	}
}

// checkTileContrast computes, for every map tile with a leader, the WCAG
// contrast ratio of its text on its colour (at least 4.5:1) and of its
// colour on the page behind the map (at least 3:1), and checks nothing
// fades them.
func checkTileContrast(t *testing.T, eval func(string) string, what string) {
	t.Helper()
	out := eval(`JSON.stringify([...document.querySelectorAll("#map .tile")].map((b) => {
		let page = "rgba(0, 0, 0, 0)";
		for (let e = b.parentElement; e && /rgba\(0, 0, 0, 0\)|transparent/.test(page); e = e.parentElement) page = getComputedStyle(e).backgroundColor;
		let opacity = 1;
		for (let e = b; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
		for (const c of b.querySelectorAll("*")) opacity = Math.min(opacity, Number(getComputedStyle(c).opacity));
		const s = getComputedStyle(b), code = b.querySelector(".code");
		return { region: b.dataset.region, out: b.getAttribute("aria-disabled") === "true" || b.classList.contains("none"), bg: s.backgroundColor, fg: getComputedStyle(code || b).color, page, opacity };
	}))`)
	var tiles []struct {
		Region, BG, FG, Page string
		Out                  bool
		Opacity              float64
	}
	if err := json.Unmarshal([]byte(out), &tiles); err != nil {
		t.Fatal(err)
	}
	if len(tiles) == 0 {
		t.Fatalf("%s: no map tiles", what)
	}
	for _, tile := range tiles {
		if tile.Opacity < 1 {
			t.Errorf("%s: tile %s is faded (opacity %.2f)", what, tile.Region, tile.Opacity)
		}
		bg, fg, page := parseRGB(t, tile.BG), parseRGB(t, tile.FG), parseRGB(t, tile.Page)
		if r := contrast(fg, bg); r < 4.5 {
			t.Errorf("%s: tile %s's text %s on %s: contrast %.2f:1, want 4.5:1", what, tile.Region, tile.FG, tile.BG, r)
		}
		if tile.Out {
			continue // not in the contest, or no votes yet: no colour to tell
		}
		if r := contrast(bg, page); r < 3 {
			t.Errorf("%s: tile %s's colour %s on the page's %s: contrast %.2f:1, want 3:1", what, tile.Region, tile.BG, tile.Page, r)
		}
	}
}

// parseRGB reads a computed colour, "rgb(r, g, b)" or an opaque rgba.
func parseRGB(t *testing.T, s string) [3]float64 {
	t.Helper()
	m := regexp.MustCompile(`^rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)$`).FindStringSubmatch(s)
	if m == nil || m[4] != "" && m[4] != "1" {
		t.Fatalf("colour %q is not an opaque rgb()", s)
	}
	var c [3]float64
	for i := range c {
		n, _ := strconv.Atoi(m[i+1])
		c[i] = float64(n) / 255
	}
	return c
}

// contrast is WCAG 2's contrast ratio of two colours.
func contrast(a, b [3]float64) float64 {
	lum := func(c [3]float64) float64 {
		var l [3]float64
		for i, v := range c {
			if v <= 0.04045 {
				l[i] = v / 12.92
			} else {
				l[i] = math.Pow((v+0.055)/1.055, 2.4)
			}
		}
		return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
	}
	la, lb := lum(a), lum(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}
