// votewatch dashboard: renders GET /api/v1/dashboard, live over SSE
// (/api/v1/stream) or at a chosen interval. No dependencies, no network
// beyond this server; every text goes through textContent.

const SVG = "http://www.w3.org/2000/svg";
// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
// US states as a tile grid: [row, column].
const US_TILES = {
  AK: [0, 0], ME: [0, 11], VT: [1, 10], NH: [1, 11],
  WA: [2, 1], ID: [2, 2], MT: [2, 3], ND: [2, 4], MN: [2, 5], IL: [2, 6], WI: [2, 7], MI: [2, 8], NY: [2, 9], RI: [2, 10], MA: [2, 11],
  OR: [3, 1], NV: [3, 2], WY: [3, 3], SD: [3, 4], IA: [3, 5], IN: [3, 6], OH: [3, 7], PA: [3, 8], NJ: [3, 9], CT: [3, 10],
  CA: [4, 1], UT: [4, 2], CO: [4, 3], NE: [4, 4], MO: [4, 5], KY: [4, 6], WV: [4, 7], VA: [4, 8], MD: [4, 9], DE: [4, 10],
  AZ: [5, 2], NM: [5, 3], KS: [5, 4], AR: [5, 5], TN: [5, 6], NC: [5, 7], SC: [5, 8], DC: [5, 9],
  OK: [6, 4], LA: [6, 5], MS: [6, 6], AL: [6, 7], GA: [6, 8],
  HI: [7, 0], TX: [7, 4], FL: [7, 9],
};

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const pct = (x, digits = 1) => `${(x * 100).toFixed(digits)}%`;
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
};
const svg = (tag, attrs = {}, text) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
};

const state = {
  data: null,
  colors: new Map(),
  names: new Map(),
  sort: { key: "region", dir: 1 },
  page: 0,
  pageSize: 25,
  mode: "live",
  interval: 10,
  source: null,
  timer: null,
};

// --- colours and avatars -------------------------------------------------

function assignColors(candidates) {
  const ids = candidates.map((c) => c.candidate_id).sort();
  ids.forEach((id, i) => { if (!state.colors.has(id)) state.colors.set(id, PALETTE[state.colors.size % PALETTE.length]); });
  for (const c of candidates) state.names.set(c.candidate_id, c);
}
const colorOf = (id) => state.colors.get(id) || "#9ca3af";
function inkOn(hex) {
  const n = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111" : "#fff";
}
function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}
// An avatar drawn here: initials on the candidate's colour. No image host.
function avatar(c) {
  const color = colorOf(c.candidate_id);
  const s = svg("svg", { viewBox: "0 0 40 40", "aria-hidden": "true" });
  s.append(svg("circle", { cx: 20, cy: 20, r: 20, fill: color }));
  s.append(svg("text", { x: 20, y: 25.5, "text-anchor": "middle", "font-size": 15, "font-weight": 700, fill: inkOn(color) }, initials(c.name)));
  return s;
}
const swatch = (id) => { const s = el("span", { class: "swatch", "aria-hidden": "true" }); s.style.background = colorOf(id); return s; };

// --- rendering -------------------------------------------------------------

function render(d) {
  state.data = d;
  assignColors(d.candidates);
  const now = new Date();
  $("last-refreshed").textContent = now.toLocaleTimeString();
  $("last-refreshed").dateTime = now.toISOString();
  const upd = d.summary.updated_at ? new Date(d.summary.updated_at) : null;
  $("updated-at").textContent = upd ? upd.toLocaleTimeString() : "no events yet";
  renderMetrics(d);
  renderLeader(d);
  renderCandidates(d);
  renderBars(d);
  renderDonut(d);
  renderMap(d);
  renderTimeline(d);
  renderRegions();
  renderParties(d);
  renderBreakdown("gender-table", d.breakdowns.gender || [], d.candidates);
  renderBreakdown("age-table", d.breakdowns.age_band || [], d.candidates);
  renderMonitoring(d);
}

function margin(tallies, total) {
  if (!tallies.length || total === 0) return null;
  const first = tallies[0].votes;
  const second = tallies.length > 1 ? tallies[1].votes : 0;
  return { votes: first - second, share: (first - second) / total };
}

function renderMetrics(d) {
  const s = d.summary;
  $("registered-voters").textContent = fmt.format(s.registered_voters);
  $("candidate-count").textContent = fmt.format(s.candidates);
  $("votes-cast").textContent = fmt.format(s.votes_cast);
  $("turnout").textContent = pct(s.turnout);
  const m = margin(d.candidates, s.votes_cast);
  $("margin").textContent = m ? `${fmt.format(m.votes)} (${pct(m.share)})` : "—";
  const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0);
  $("rejected-total").textContent = fmt.format(rejected);
}

function renderLeader(d) {
  const l = d.summary.leader;
  const box = $("leader-avatar");
  box.replaceChildren();
  if (!l) {
    $("leader-name").textContent = "No votes counted yet";
    $("leader-party").textContent = "";
    $("leader-votes").textContent = "0";
    $("leader-share").textContent = "0%";
    return;
  }
  box.append(avatar(l));
  $("leader-name").textContent = l.name;
  $("leader-party").textContent = l.party;
  $("leader-votes").textContent = fmt.format(l.votes);
  $("leader-share").textContent = pct(d.summary.votes_cast ? l.votes / d.summary.votes_cast : 0);
}

function renderCandidates(d) {
  $("candidate-cards").replaceChildren(...d.candidates.map((c) => {
    const a = el("span", { class: "avatar", "aria-hidden": "true" });
    a.append(avatar(c));
    return el("li", { "data-candidate-id": c.candidate_id }, a,
      el("div", {}, el("div", { class: "nm", text: c.name }), el("div", { class: "pt", text: c.party }),
        el("div", { class: "vt", text: `${fmt.format(c.votes)} votes · ${pct(c.share)}` })));
  }));
  $("candidates-table").tBodies[0].replaceChildren(...d.candidates.map((c) =>
    el("tr", { "data-candidate-id": c.candidate_id },
      el("td", {}, swatch(c.candidate_id), c.name), el("td", { text: c.party }),
      el("td", { class: "num votes", text: fmt.format(c.votes) }), el("td", { class: "num share", text: pct(c.share) }))));
}

function renderBars(d) {
  const chart = $("bar-chart");
  const rowH = 30, labelW = 130, w = 420;
  const h = Math.max(rowH * d.candidates.length + 10, 40);
  chart.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const max = Math.max(1, ...d.candidates.map((c) => c.votes));
  const nodes = [];
  d.candidates.forEach((c, i) => {
    const y = 5 + i * rowH;
    const bw = ((w - labelW - 70) * c.votes) / max;
    nodes.push(svg("text", { x: labelW - 6, y: y + 18, "text-anchor": "end", "font-size": 12 }, c.name));
    nodes.push(svg("rect", { x: labelW, y: y + 4, width: Math.max(bw, 1), height: rowH - 10, fill: colorOf(c.candidate_id), rx: 2 }));
    nodes.push(svg("text", { x: labelW + bw + 6, y: y + 18, "font-size": 12 }, fmt.format(c.votes)));
  });
  chart.replaceChildren(...nodes);
}

function renderDonut(d) {
  const chart = $("donut-chart");
  const total = d.candidates.reduce((a, c) => a + c.votes, 0);
  const nodes = [svg("circle", { cx: 100, cy: 100, r: 70, fill: "none", stroke: "#e5e7eb", "stroke-width": 40 })];
  if (total > 0) {
    const C = 2 * Math.PI * 70;
    let offset = 0;
    for (const c of d.candidates) {
      const len = (C * c.votes) / total;
      if (len <= 0) continue;
      const arc = svg("circle", {
        cx: 100, cy: 100, r: 70, fill: "none", stroke: colorOf(c.candidate_id), "stroke-width": 40,
        "stroke-dasharray": `${len} ${C - len}`, "stroke-dashoffset": -offset, transform: "rotate(-90 100 100)",
      });
      arc.append(svg("title", {}, `${c.name}: ${pct(c.votes / total)}`));
      nodes.push(arc);
      offset += len;
    }
  }
  nodes.push(svg("text", { x: 100, y: 97, "text-anchor": "middle", "font-size": 14, fill: "#57606a" }, "votes"));
  nodes.push(svg("text", { x: 100, y: 117, "text-anchor": "middle", "font-size": 18, "font-weight": 700 }, fmt.format(total)));
  chart.replaceChildren(...nodes);
  $("donut-legend").replaceChildren(...d.candidates.map((c) =>
    el("li", { "data-candidate-id": c.candidate_id }, swatch(c.candidate_id), `${c.name} — ${pct(c.share)}`)));
}

function regionRows(d) {
  return d.regions.map((r) => {
    const m = margin(r.tallies, r.votes_cast);
    return {
      region: r.region, registered: r.registered_voters, votes: r.votes_cast, turnout: r.turnout,
      leaderId: r.leader_candidate_id, leader: r.leader_candidate_id ? (state.names.get(r.leader_candidate_id)?.name || r.leader_candidate_id) : "",
      margin: m ? m.share : -1, marginVotes: m ? m.votes : 0,
    };
  });
}

function describeRegion(r) {
  if (!r.leaderId) return `${r.region}: no votes yet; ${fmt.format(r.registered)} registered`;
  return `${r.region}: ${r.leader} leads by ${pct(r.margin)} (${fmt.format(r.marginVotes)} votes); turnout ${pct(r.turnout)} of ${fmt.format(r.registered)} registered`;
}

function renderMap(d) {
  const map = $("map");
  const rows = regionRows(d);
  const geographic = rows.length > 0 && rows.every((r) => US_TILES[r.region]);
  map.classList.toggle("plain", !geographic);
  const tip = $("map-tip");
  map.replaceChildren(...rows.map((r) => {
    const label = r.leaderId ? initials(r.leader) : "–";
    const tile = el("button", { type: "button", class: "tile", role: "listitem", "data-region": r.region, "aria-label": describeRegion(r), title: describeRegion(r) },
      r.region, el("small", { text: label }));
    if (geographic) {
      const [row, col] = US_TILES[r.region];
      tile.style.gridRow = String(row + 1);
      tile.style.gridColumn = String(col + 1);
    }
    if (r.leaderId) {
      const color = colorOf(r.leaderId);
      tile.style.background = color;
      tile.style.color = inkOn(color);
      // Closer races are lighter: opacity from 0.45 (tied) to 1 (20+ points).
      tile.style.opacity = String(0.45 + 0.55 * Math.min(1, r.margin / 0.2));
    } else {
      tile.classList.add("none");
    }
    const show = () => { tip.textContent = describeRegion(r); };
    tile.addEventListener("mouseenter", show);
    tile.addEventListener("focus", show);
    return tile;
  }));
}

function renderTimeline(d) {
  const chart = $("timeline-chart");
  const w = 600, h = 220, left = 44, bottom = 24, top = 10, right = 10;
  chart.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const points = d.timeline;
  const nodes = [];
  if (points.length === 0) {
    nodes.push(svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle", fill: "#57606a" }, "No votes yet"));
    chart.replaceChildren(...nodes);
    $("timeline-legend").replaceChildren();
    return;
  }
  const t0 = new Date(points[0].minute).getTime();
  const t1 = new Date(points[points.length - 1].minute).getTime();
  const span = Math.max(t1 - t0, 60000);
  const max = Math.max(1, ...points.flatMap((p) => Object.values(p.votes)));
  const x = (t) => left + ((w - left - right) * (t - t0)) / span;
  const y = (v) => h - bottom - ((h - bottom - top) * v) / max;
  nodes.push(svg("line", { x1: left, y1: h - bottom, x2: w - right, y2: h - bottom, stroke: "#9ca3af" }));
  nodes.push(svg("line", { x1: left, y1: top, x2: left, y2: h - bottom, stroke: "#9ca3af" }));
  nodes.push(svg("text", { x: left - 4, y: top + 10, "text-anchor": "end", "font-size": 11 }, fmt.format(max)));
  nodes.push(svg("text", { x: left - 4, y: h - bottom, "text-anchor": "end", "font-size": 11 }, "0"));
  nodes.push(svg("text", { x: left, y: h - 6, "font-size": 11 }, new Date(t0).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  nodes.push(svg("text", { x: w - right, y: h - 6, "text-anchor": "end", "font-size": 11 }, new Date(t1).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  for (const c of d.candidates) {
    const pts = points.map((p) => `${x(new Date(p.minute).getTime()).toFixed(1)},${y(p.votes[c.candidate_id] || 0).toFixed(1)}`);
    const line = svg("polyline", { points: pts.join(" "), fill: "none", stroke: colorOf(c.candidate_id), "stroke-width": 2 });
    line.append(svg("title", {}, c.name));
    nodes.push(line);
    // Dots too: a single minute has no line to draw.
    for (const p of points) {
      const dot = svg("circle", { cx: x(new Date(p.minute).getTime()).toFixed(1), cy: y(p.votes[c.candidate_id] || 0).toFixed(1), r: 3, fill: colorOf(c.candidate_id) });
      dot.append(svg("title", {}, `${c.name}: ${fmt.format(p.votes[c.candidate_id] || 0)} votes at ${new Date(p.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`));
      nodes.push(dot);
    }
  }
  chart.replaceChildren(...nodes);
  $("timeline-legend").replaceChildren(...d.candidates.map((c) => el("li", {}, swatch(c.candidate_id), c.name)));
}

const SORTERS = {
  region: (a, b) => a.region.localeCompare(b.region),
  registered: (a, b) => a.registered - b.registered,
  votes: (a, b) => a.votes - b.votes,
  turnout: (a, b) => a.turnout - b.turnout,
  leader: (a, b) => a.leader.localeCompare(b.leader),
  margin: (a, b) => a.margin - b.margin,
};

function renderRegions() {
  const d = state.data;
  if (!d) return;
  const rows = regionRows(d);
  const { key, dir } = state.sort;
  rows.sort((a, b) => dir * SORTERS[key](a, b) || a.region.localeCompare(b.region));
  const pages = Math.max(1, Math.ceil(rows.length / state.pageSize));
  state.page = Math.min(state.page, pages - 1);
  const shown = rows.slice(state.page * state.pageSize, (state.page + 1) * state.pageSize);
  $("regions-table").tBodies[0].replaceChildren(...shown.map((r) =>
    el("tr", { "data-region": r.region },
      el("th", { scope: "row", text: r.region }),
      el("td", { class: "num registered", text: fmt.format(r.registered) }),
      el("td", { class: "num votes", text: fmt.format(r.votes) }),
      el("td", { class: "num turnout", text: pct(r.turnout) }),
      el("td", { class: "leader" }, r.leaderId ? swatch(r.leaderId) : null, r.leader || "—"),
      el("td", { class: "num margin", text: r.margin >= 0 ? pct(r.margin) : "—" }))));
  $("page-info").textContent = `Page ${state.page + 1} of ${pages}`;
  $("prev-page").disabled = state.page === 0;
  $("next-page").disabled = state.page >= pages - 1;
  for (const th of $("regions-table").tHead.rows[0].cells) {
    const k = th.querySelector("button").dataset.sort;
    if (k === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

function renderParties(d) {
  $("parties-table").tBodies[0].replaceChildren(...d.parties.map((p) => {
    const first = d.candidates.filter((c) => c.party === p.party).map((c) => c.candidate_id).sort()[0];
    return el("tr", {}, el("td", {}, first ? swatch(first) : null, p.party), el("td", { class: "num", text: fmt.format(p.candidates) }),
      el("td", { class: "num", text: fmt.format(p.votes) }), el("td", { class: "num", text: pct(p.share) }));
  }));
}

// A breakdown table: one row per bucket, each candidate's share within it.
function renderBreakdown(id, buckets, candidates) {
  const table = $(id);
  table.tHead.replaceChildren(el("tr", {}, el("th", { scope: "col", text: "Group" }), el("th", { scope: "col", class: "num", text: "Votes" }),
    ...candidates.map((c) => el("th", { scope: "col", class: "num" }, swatch(c.candidate_id), c.name))));
  table.tBodies[0].replaceChildren(...buckets.map((b) => {
    const by = new Map(b.tallies.map((t) => [t.candidate_id, t.votes]));
    return el("tr", {}, el("th", { scope: "row", text: b.bucket }), el("td", { class: "num", text: fmt.format(b.votes) }),
      ...candidates.map((c) => {
        const share = b.votes ? (by.get(c.candidate_id) || 0) / b.votes : 0;
        const bar = el("span", { class: "bar", "aria-hidden": "true" });
        bar.style.width = `${(share * 100).toFixed(1)}%`;
        bar.style.background = colorOf(c.candidate_id);
        return el("td", { class: "num" }, el("span", { text: pct(share) }), bar);
      }));
  }));
}

const REASONS = { duplicate_voter: "Duplicate voter", unknown_voter: "Unknown voter", unknown_candidate: "Unknown candidate", wrong_station: "Wrong station", outside_polls: "Outside polling hours", implausible_time: "Implausible time" };

function renderMonitoring(d) {
  const m = d.monitoring;
  for (const k of Object.keys(REASONS)) $(`rej-${k}`).textContent = fmt.format(m.rejected[k] || 0);
  $("dead-lettered").textContent = fmt.format(m.dead_lettered);
  // To the minute, as the API serves them: a time to the second, next to a
  // station's queue, could tell whose vote was rejected.
  const when = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  $("recent-rejections").replaceChildren(...(m.recent_rejections.length ? m.recent_rejections.map((r) =>
    el("li", { text: `${when(r.recorded_at)} — ${REASONS[r.reason] || r.reason}` })) : [el("li", { text: "none" })]));
  $("recent-dead-letters").replaceChildren(...(m.recent_dead_letters.length ? m.recent_dead_letters.map((x) =>
    el("li", { text: `${when(x.received_at)} — ${x.topic}: ${x.reason}` })) : [el("li", { text: "none" })]));
}

// --- data flow ------------------------------------------------------------

function setConnection(text, cls) {
  const c = $("connection");
  c.textContent = text;
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

  for (const btn of document.querySelectorAll("#regions-table th button")) {
    btn.addEventListener("click", () => {
      const key = btn.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      state.page = 0;
      renderRegions();
    });
  }
  $("page-size").addEventListener("change", (e) => { state.pageSize = Number(e.target.value); state.page = 0; renderRegions(); });
  $("prev-page").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); renderRegions(); });
  $("next-page").addEventListener("click", () => { state.page += 1; renderRegions(); });
  state.pageSize = Number($("page-size").value);
  applyMode();
}

init();
