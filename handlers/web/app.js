// votewatch dashboard: renders GET /api/v1/dashboard, live over SSE
// (/api/v1/stream) or at a chosen interval. ES modules served from this
// binary, no build step, no dependencies, no network beyond this server.
// Each push updates the page in place: focus, selection and scroll stay.
//
// The contest picker chooses what the page shows. The default contest (the
// main race) is the full dashboard, live; any other contest is its GET
// /api/v1/contests/{id} answer, fetched on each push and every few seconds.
// The default's decided badges and reporting come the same way.

import { renderBars, renderDonut, renderTimeline } from "./charts.js";
import { initBallotBox, NO_COLOR, renderMeasure, renderPicker, renderStatus, YES_COLOR, yesNo } from "./contests.js";
import { $, Colors, contestRegionRows, fmt, margin, pct, regionRows, setAvatar, setText } from "./format.js";
import { Announcer } from "./announce.js";
import { initMap, renderMap } from "./map.js";
import { renderBreakdown, renderCandidates, renderMonitoring, renderParties, renderRegions, renderTimelineTable, keyboardScroll, sortRegions } from "./tables.js";

const state = {
  data: null,
  colors: new Colors(),
  view: { sort: { key: "region", dir: 1 }, page: 0, pageSize: 25 },
  mode: "live",
  interval: 10,
  source: null,
  timer: null,
  // contestId is the contest picked; contest is the latest GET
  // /api/v1/contests/{id} answer, for whichever contest it was fetched.
  contestId: "default",
  contest: null,
  // tableRows are the regions table's rows as last shown, unsorted.
  tableRows: [],
  announcer: null,
};

// How often the picked contest and the list are polled besides each push,
// and the least time between two fetches of the contest.
const CONTEST_POLL_MS = 5000;
const CONTEST_MIN_GAP_MS = 1000;

const pager = () => ({ info: $("page-info"), prev: $("prev-page"), next: $("next-page") });

// picked returns the contest answer for the contest picked, or null while
// it is being fetched.
function picked() {
  const c = state.contest;
  return c && c.contest_id === state.contestId ? c : null;
}

function render() {
  const c = picked();
  const main = state.contestId === "default";
  // Until the picked contest's figures arrive, the previous ones are shown
  // faded and marked busy rather than passed off as the new contest's.
  const waiting = !main && !c;
  $("main").classList.toggle("loading", waiting);
  if (waiting) $("main").setAttribute("aria-busy", "true");
  else $("main").removeAttribute("aria-busy");
  if (main) {
    if (state.data) renderMain(state.data, c);
  } else if (c) {
    renderContest(c);
  }
  renderStatus(c, (id) => state.colors.nameOf(id));
  if (state.data) renderMonitoring({ counts: $("counts"), rejections: $("recent-rejections"), deadLetters: $("recent-dead-letters") }, state.data.monitoring);
}

function stamp(d) {
  const now = new Date();
  setText($("last-refreshed"), now.toLocaleTimeString());
  $("last-refreshed").dateTime = now.toISOString();
  setText($("updated-at"), d.summary.updated_at ? new Date(d.summary.updated_at).toLocaleTimeString() : "no events yet");
}

function showKind(measure, main) {
  $("timeline-card").hidden = !main;
  $("default-only").hidden = !main;
  $("candidate-cards").hidden = measure;
  $("measure").hidden = !measure;
  setText($("cands-h"), measure ? "Yes or No" : "Candidates");
  setText($("leader-h"), measure ? "Leading choice" : "Leading candidate");
  setText($("candidate-count-label"), measure ? "Choices" : "Candidates");
  setText($("registered-label"), main ? "Registered voters" : "Eligible voters");
}

// renderMain is the whole dashboard for the default contest, with its
// regions' decided and reporting from details once fetched.
function renderMain(d, details) {
  const colors = state.colors;
  colors.assign(d.candidates);
  showKind(false, true);
  renderMetrics(d);
  renderLeader(d.summary.leader, d.summary.votes_cast);
  const l = d.summary.leader;
  state.announcer.leader("default", "Main race", l ? l.candidate_id : null, l ? l.name : "");
  renderCandidates($("candidate-cards"), $("candidates-table"), d.candidates, colors);
  renderBars($("bar-chart"), d.candidates, colors);
  renderDonut($("donut-chart"), $("donut-legend"), d.candidates, colors);
  const rows = regionRows(d, colors, details);
  renderMap($("map"), $("map-tip"), rows, colors);
  renderTimeline($("timeline-chart"), $("timeline-legend"), d.timeline, d.candidates, colors);
  renderTimelineTable($("timeline-table"), d.timeline, d.candidates, colors);
  state.tableRows = rows;
  renderRegions($("regions-table"), pager(), rows, state.view, colors);
  renderParties($("parties-table"), d.parties, d.candidates, colors);
  renderBreakdown($("gender-table"), d.breakdowns.gender || [], d.candidates, colors);
  renderBreakdown($("age-table"), d.breakdowns.age_band || [], d.candidates, colors);
}

// renderContest shows any other contest from its own answer: its choices,
// its regions (the election's others greyed on the map), its rejections.
function renderContest(c) {
  const colors = state.colors;
  const measure = c.kind === "measure";
  if (measure) {
    const { yes, no } = yesNo(c.candidates);
    if (yes) colors.pin(yes.candidate_id, YES_COLOR);
    if (no) colors.pin(no.candidate_id, NO_COLOR);
  }
  colors.assign(c.candidates);
  showKind(measure, false);
  setText($("registered-voters"), fmt.format(c.eligible_voters));
  setText($("candidate-count"), fmt.format(c.candidates.length));
  setText($("votes-cast"), fmt.format(c.votes_cast));
  setText($("turnout"), pct(c.turnout));
  const m = margin(c.candidates, c.votes_cast);
  setText($("margin"), m ? `${fmt.format(m.votes)} (${pct(m.share)})` : "—");
  setText($("rejected-total"), fmt.format(Object.values(c.rejected || {}).reduce((a, b) => a + b, 0)));
  const top = c.candidates.length && c.candidates[0].votes > 0 ? c.candidates[0] : null;
  renderLeader(top && { candidate_id: top.candidate_id, name: top.name, party: top.party, votes: top.votes }, c.votes_cast);
  state.announcer.leader(c.contest_id, c.name || c.contest_id, top ? top.candidate_id : null, top ? top.name : "");
  renderCandidates($("candidate-cards"), $("candidates-table"), c.candidates, colors);
  if (measure) renderMeasure($("measure"), c.candidates);
  renderBars($("bar-chart"), c.candidates, colors);
  renderDonut($("donut-chart"), $("donut-legend"), c.candidates, colors);
  const all = state.data ? state.data.regions.map((r) => r.region) : [];
  const rows = contestRegionRows(c, all, colors);
  renderMap($("map"), $("map-tip"), rows, colors);
  state.tableRows = rows.filter((r) => !r.out);
  renderRegions($("regions-table"), pager(), state.tableRows, state.view, colors);
}

function renderMetrics(d) {
  const s = d.summary;
  setText($("registered-voters"), fmt.format(s.registered_voters));
  setText($("candidate-count"), fmt.format(s.candidates));
  setText($("votes-cast"), fmt.format(s.votes_cast));
  setText($("turnout"), pct(s.turnout));
  const m = margin(d.candidates, s.votes_cast);
  setText($("margin"), m ? `${fmt.format(m.votes)} (${pct(m.share)})` : "—");
  setText($("rejected-total"), fmt.format(Object.values(s.rejected).reduce((a, b) => a + b, 0)));
}

function renderLeader(l, votesCast) {
  const box = $("leader-avatar");
  if (!l) {
    box.replaceChildren();
    delete box.dataset.sig;
    setText($("leader-name"), "No votes counted yet");
    setText($("leader-party"), "");
    setText($("leader-votes"), "0");
    setText($("leader-share"), "0%");
    return;
  }
  setAvatar(box, l.name, state.colors.of(l.candidate_id));
  setText($("leader-name"), l.name);
  setText($("leader-party"), l.party || "Independent");
  setText($("leader-votes"), fmt.format(l.votes));
  setText($("leader-share"), pct(votesCast ? l.votes / votesCast : 0));
}

function showRegions() {
  render();
}

// showRegionRow turns the regions table to region's row and moves the
// focus to it (a map tile's action).
function showRegionRow(region) {
  const i = sortRegions(state.tableRows, state.view).findIndex((r) => r.region === region);
  if (i < 0) return;
  state.view.page = Math.floor(i / state.view.pageSize);
  showRegions();
  const th = document.querySelector(`#regions-table tr[data-region="${CSS.escape(region)}"] > th`);
  if (!th) return;
  th.tabIndex = -1;
  th.focus();
}

// --- data flow ------------------------------------------------------------

function setConnection(text, cls) {
  const c = $("connection");
  setText(c, text);
  c.className = cls || "";
}

async function refreshNow() {
  try {
    const resp = await fetch("/api/v1/dashboard", { headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    onDashboard(await resp.json());
    if (state.mode === "interval") setConnection(`updating every ${state.interval} s`, "live");
  } catch (err) {
    setConnection(`refresh failed (${err.message}); retrying`, "down");
  }
}

function onDashboard(d) {
  state.data = d;
  stamp(d);
  render();
  loadContest();
}

// loadContest fetches the picked contest: one fetch at a time, at most one
// a CONTEST_MIN_GAP_MS, and once more after a fetch if asked meanwhile, so
// a burst of pushes costs one or two fetches and the last push is seen.
const fetching = { busy: false, again: false, last: 0, timer: null };

async function loadContest() {
  if (fetching.busy) { fetching.again = true; return; }
  const wait = fetching.last + CONTEST_MIN_GAP_MS - Date.now();
  if (wait > 0) {
    if (!fetching.timer) fetching.timer = setTimeout(() => { fetching.timer = null; loadContest(); }, wait);
    return;
  }
  fetching.busy = true;
  fetching.last = Date.now();
  const id = state.contestId;
  try {
    const resp = await fetch(`/api/v1/contests/${encodeURIComponent(id)}`, { headers: { Accept: "application/json" } });
    if (resp.ok) {
      const c = await resp.json();
      if (id === state.contestId) {
        state.contest = c;
        render();
      }
    }
  } catch {
    // The next push or poll tries again; the SSE status tells of an outage.
  } finally {
    fetching.busy = false;
    if (fetching.again) { fetching.again = false; loadContest(); }
  }
}

async function loadContests() {
  try {
    const resp = await fetch("/api/v1/contests", { headers: { Accept: "application/json" } });
    if (resp.ok) {
      const { contests } = await resp.json();
      renderPicker($("contest"), contests);
      state.announcer.contests(contests, (c) => (c.contest_id === "default" ? "The main race" : c.name || c.contest_id));
    }
  } catch {
    // As above: the list is tried again at the next poll.
  }
}

function pickContest(id) {
  if (id === state.contestId) return;
  state.contestId = id;
  state.view.page = 0;
  render();
  fetching.last = 0;
  loadContest();
}

function startLive() {
  const es = new EventSource("/api/v1/stream");
  es.addEventListener("dashboard", (ev) => { onDashboard(JSON.parse(ev.data)); setConnection("live", "live"); });
  es.addEventListener("open", () => setConnection("live", "live"));
  // EventSource reconnects by itself after a server restart.
  es.addEventListener("error", () => setConnection("reconnecting…", "down"));
  state.source = es;
}

function applyMode() {
  if (state.source) { state.source.close(); state.source = null; }
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
  if (state.mode === "live") {
    startLive();
  } else {
    refreshNow();
    state.timer = setInterval(refreshNow, state.interval * 1000);
  }
  localStorage.setItem("votewatch.mode", state.mode);
  localStorage.setItem("votewatch.interval", String(state.interval));
}

function init() {
  state.mode = localStorage.getItem("votewatch.mode") === "interval" ? "interval" : "live";
  state.interval = Math.min(60, Math.max(5, Number(localStorage.getItem("votewatch.interval")) || 10));
  $(state.mode === "live" ? "mode-live" : "mode-interval").checked = true;
  $("interval").value = String(state.interval);
  $("interval-value").textContent = String(state.interval);

  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => { state.mode = radio.value; applyMode(); });
  }
  $("interval").addEventListener("input", (e) => { $("interval-value").textContent = e.target.value; });
  $("interval").addEventListener("change", (e) => {
    state.interval = Number(e.target.value);
    if (state.mode !== "interval") { state.mode = "interval"; $("mode-interval").checked = true; }
    applyMode();
  });
  $("refresh-now").addEventListener("click", refreshNow);
  $("controls").addEventListener("submit", (e) => e.preventDefault());

  const view = state.view;
  for (const btn of document.querySelectorAll("#regions-table th button")) {
    btn.addEventListener("click", () => {
      const key = btn.dataset.sort;
      view.sort = { key, dir: view.sort.key === key ? -view.sort.dir : 1 };
      view.page = 0;
      showRegions();
    });
  }
  $("page-size").addEventListener("change", (e) => { view.pageSize = Number(e.target.value); view.page = 0; showRegions(); });
  $("prev-page").addEventListener("click", () => { view.page = Math.max(0, view.page - 1); showRegions(); });
  $("next-page").addEventListener("click", () => { view.page += 1; showRegions(); });
  view.pageSize = Number($("page-size").value);

  $("contest").addEventListener("change", (e) => pickContest(e.target.value));
  state.announcer = new Announcer($("announcer"));
  initMap($("map"), $("map-tip"), showRegionRow);
  keyboardScroll(document.querySelectorAll(".scroll"));
  initBallotBox();
  loadContests();
  setInterval(() => { loadContests(); loadContest(); }, CONTEST_POLL_MS);
  applyMode();
}

init();
