// votewatch dashboard: renders GET /api/v1/dashboard, live over SSE
// (/api/v1/stream) or at a chosen interval. ES modules served from this
// binary, no build step, no dependencies, no network beyond this server.
// Each push updates the page in place: focus, selection and scroll stay.

import { renderBars, renderDonut, renderTimeline } from "./charts.js";
import { $, Colors, fmt, margin, pct, regionRows, setAvatar, setText } from "./format.js";
import { renderMap } from "./map.js";
import { renderBreakdown, renderCandidates, renderMonitoring, renderParties, renderRegions } from "./tables.js";

const state = {
  data: null,
  colors: new Colors(),
  view: { sort: { key: "region", dir: 1 }, page: 0, pageSize: 25 },
  mode: "live",
  interval: 10,
  source: null,
  timer: null,
};

const pager = () => ({ info: $("page-info"), prev: $("prev-page"), next: $("next-page") });

function render(d) {
  state.data = d;
  const colors = state.colors;
  colors.assign(d.candidates);
  const now = new Date();
  setText($("last-refreshed"), now.toLocaleTimeString());
  $("last-refreshed").dateTime = now.toISOString();
  setText($("updated-at"), d.summary.updated_at ? new Date(d.summary.updated_at).toLocaleTimeString() : "no events yet");
  renderMetrics(d);
  renderLeader(d);
  renderCandidates($("candidate-cards"), $("candidates-table"), d.candidates, colors);
  renderBars($("bar-chart"), d.candidates, colors);
  renderDonut($("donut-chart"), $("donut-legend"), d.candidates, colors);
  const rows = regionRows(d, colors);
  renderMap($("map"), $("map-tip"), rows, colors);
  renderTimeline($("timeline-chart"), $("timeline-legend"), d.timeline, d.candidates, colors);
  renderRegions($("regions-table"), pager(), rows, state.view, colors);
  renderParties($("parties-table"), d.parties, d.candidates, colors);
  renderBreakdown($("gender-table"), d.breakdowns.gender || [], d.candidates, colors);
  renderBreakdown($("age-table"), d.breakdowns.age_band || [], d.candidates, colors);
  renderMonitoring({ counts: $("counts"), rejections: $("recent-rejections"), deadLetters: $("recent-dead-letters") }, d.monitoring);
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

function renderLeader(d) {
  const l = d.summary.leader;
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
  setText($("leader-party"), l.party);
  setText($("leader-votes"), fmt.format(l.votes));
  setText($("leader-share"), pct(d.summary.votes_cast ? l.votes / d.summary.votes_cast : 0));
}

function showRegions() {
  if (state.data) renderRegions($("regions-table"), pager(), regionRows(state.data, state.colors), state.view, state.colors);
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
    render(await resp.json());
    if (state.mode === "interval") setConnection(`updating every ${state.interval} s`, "live");
  } catch (err) {
    setConnection(`refresh failed (${err.message}); retrying`, "down");
  }
}

function startLive() {
  const es = new EventSource("/api/v1/stream");
  es.addEventListener("dashboard", (ev) => { render(JSON.parse(ev.data)); setConnection("live", "live"); });
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
  applyMode();
}

init();
