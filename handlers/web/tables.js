// The tables and lists: candidate cards and table, regions (sorted and
// paged), parties, the breakdowns and the monitoring panel. Rows are kept
// by key and updated in place.

import { el, fmt, pct, rejectionLabel, reportingText, rejectionReasons, setAttrs, setAvatar, setText, swatch, sync, toMinute } from "./format.js";

// cell is a table cell holding a colour swatch and a text.
function swatchCell(tag, props = {}) {
  return el(tag, props, swatch(""), el("span"));
}

function setSwatchCell(cell, color, text) {
  const [sw, label] = cell.children;
  sw.style.background = color || "";
  sw.hidden = !color;
  setText(label, text);
}

export function renderCandidates(cards, table, candidates, colors) {
  sync(cards, candidates, (c) => c.candidate_id, () =>
    el("li", {}, el("span", { class: "avatar", "aria-hidden": "true" }),
      el("div", {}, el("div", { class: "nm" }), el("div", { class: "pt" }), el("div", { class: "vt" }))),
  (li, c) => {
    li.dataset.candidateId = c.candidate_id;
    setAvatar(li.querySelector(".avatar"), c.name, colors.of(c.candidate_id));
    setText(li.querySelector(".nm"), c.name);
    setText(li.querySelector(".pt"), c.party || "Independent"); // no party (contract v1.3)
    setText(li.querySelector(".vt"), `${fmt.format(c.votes)} votes · ${pct(c.share)}`);
  });
  sync(table.tBodies[0], candidates, (c) => c.candidate_id, () =>
    el("tr", {}, swatchCell("td"), el("td"), el("td", { class: "num votes" }), el("td", { class: "num share" })),
  (tr, c) => {
    tr.dataset.candidateId = c.candidate_id;
    const [name, party, votes, share] = tr.cells;
    setSwatchCell(name, colors.of(c.candidate_id), c.name);
    setText(party, c.party || "Independent");
    setText(votes, fmt.format(c.votes));
    setText(share, pct(c.share));
  });
}

const SORTERS = {
  region: (a, b) => a.region.localeCompare(b.region),
  registered: (a, b) => a.registered - b.registered,
  votes: (a, b) => a.votes - b.votes,
  turnout: (a, b) => a.turnout - b.turnout,
  leader: (a, b) => a.leader.localeCompare(b.leader),
  margin: (a, b) => a.margin - b.margin,
  reporting: (a, b) => closedShare(a) - closedShare(b),
  decided: (a, b) => Number(!!a.decided) - Number(!!b.decided),
};

function closedShare(r) {
  return r.reporting && r.reporting.available && r.reporting.stations ? r.reporting.stations_closed / r.reporting.stations : -1;
}

// sortRegions is rows in the order the table shows them (view.sort).
export function sortRegions(rows, view) {
  const { key, dir } = view.sort;
  return [...rows].sort((a, b) => dir * SORTERS[key](a, b) || a.region.localeCompare(b.region));
}

// renderRegions shows one page of rows (see regionRows) sorted by view.sort;
// it clamps view.page to the pages there are.
export function renderRegions(table, pager, rows, view, colors) {
  const { key, dir } = view.sort;
  rows = sortRegions(rows, view);
  const pages = Math.max(1, Math.ceil(rows.length / view.pageSize));
  view.page = Math.min(view.page, pages - 1);
  const shown = rows.slice(view.page * view.pageSize, (view.page + 1) * view.pageSize);
  sync(table.tBodies[0], shown, (r) => r.region, () =>
    el("tr", {}, el("th", { scope: "row" }), el("td", { class: "num registered" }), el("td", { class: "num votes" }),
      el("td", { class: "num turnout" }), swatchCell("td", { class: "leader" }), el("td", { class: "num margin" }),
      el("td", { class: "num reporting" }), el("td", { class: "decided" })),
  (tr, r) => {
    tr.dataset.region = r.region;
    const [name, registered, votes, turnout, leader, margin, reporting, decided] = tr.cells;
    setText(name, r.region);
    setText(registered, fmt.format(r.registered));
    // A withheld region has too few votes to publish (README, "What is
    // published"): say so rather than show 0.
    setText(votes, r.withheld ? "withheld" : fmt.format(r.votes));
    setText(turnout, r.withheld ? "—" : pct(r.turnout));
    setSwatchCell(leader, r.leaderId ? colors.of(r.leaderId) : "", r.leader || "—");
    setText(margin, r.margin >= 0 ? pct(r.margin) : "—");
    setText(reporting, reportingText(r.reporting));
    setText(decided, r.decided == null ? "—" : r.decided ? "✓ Decided" : "Not yet");
    decided.classList.toggle("yes", !!r.decided);
  });
  setText(pager.info, `Page ${view.page + 1} of ${pages}`);
  pager.prev.disabled = view.page === 0;
  pager.next.disabled = view.page >= pages - 1;
  for (const th of table.tHead.rows[0].cells) {
    if (th.querySelector("button").dataset.sort === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

export function renderParties(table, parties, candidates, colors) {
  sync(table.tBodies[0], parties, (p) => p.party, () =>
    el("tr", {}, swatchCell("td"), el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" })),
  (tr, p) => {
    const first = candidates.filter((c) => c.party === p.party).map((c) => c.candidate_id).sort()[0];
    const [name, count, votes, share] = tr.cells;
    setSwatchCell(name, first ? colors.of(first) : "", p.party);
    setText(count, fmt.format(p.candidates));
    setText(votes, fmt.format(p.votes));
    setText(share, pct(p.share));
  });
}

// renderBreakdown fills a breakdown table: one row per bucket, each
// candidate's share within it.
export function renderBreakdown(table, buckets, candidates, colors) {
  if (!table.tHead.rows.length) {
    table.tHead.append(el("tr", {}, el("th", { scope: "col", text: "Group" }), el("th", { scope: "col", class: "num", text: "Votes" })));
  }
  syncAfter(table.tHead.rows[0], 2, candidates, (c) => c.candidate_id, () => swatchCell("th", { scope: "col", class: "num" }),
    (th, c) => setSwatchCell(th, colors.of(c.candidate_id), c.name));
  sync(table.tBodies[0], buckets, (b) => b.bucket, () => el("tr", {}, el("th", { scope: "row" }), el("td", { class: "num" })), (tr, b) => {
    setText(tr.cells[0], b.bucket);
    setText(tr.cells[1], fmt.format(b.votes));
    const by = new Map(b.tallies.map((t) => [t.candidate_id, t.votes]));
    const shares = candidates.map((c) => ({ c, share: b.votes ? (by.get(c.candidate_id) || 0) / b.votes : 0 }));
    syncAfter(tr, 2, shares, (x) => x.c.candidate_id,
      () => el("td", { class: "num" }, el("span"), el("span", { class: "bar", "aria-hidden": "true" })),
      (td, { c, share }) => {
        const [text, bar] = td.children;
        setText(text, pct(share));
        bar.style.width = `${(share * 100).toFixed(1)}%`;
        bar.style.background = colors.of(c.candidate_id);
      });
  });
}

// renderTimelineTable is the votes-per-minute chart as a table: a row per
// minute, a column per candidate.
export function renderTimelineTable(table, points, candidates, colors) {
  syncAfter(table.tHead.rows[0], 1, candidates, (c) => c.candidate_id, () => swatchCell("th", { scope: "col", class: "num" }),
    (th, c) => setSwatchCell(th, colors.of(c.candidate_id), c.name));
  sync(table.tBodies[0], points, (p) => p.minute, () => el("tr", {}, el("th", { scope: "row" })), (tr, p) => {
    setText(tr.cells[0], toMinute(p.minute));
    syncAfter(tr, 1, candidates, (c) => c.candidate_id, () => el("td", { class: "num" }),
      (td, c) => setText(td, fmt.format(p.votes[c.candidate_id] || 0)));
  });
}

// syncAfter is sync for parent's children after its first fixed ones,
// which it leaves where they are.
function syncAfter(parent, fixed, items, keyOf, create, update) {
  const head = [...parent.children].slice(0, fixed);
  head.forEach((n, i) => { n.dataset.key = `fixed-${i}`; });
  sync(parent, [...head.map((n) => ({ fixed: n })), ...items],
    (x) => (x.fixed ? x.fixed.dataset.key : keyOf(x)),
    create, (n, x) => { if (!x.fixed) update(n, x); });
}

// renderMonitoring fills the panel: a count per rejection reason the API
// counts (labelled from one place) and of dead letters, and the latest of
// each.
export function renderMonitoring(parts, m) {
  const counts = [
    ...rejectionReasons(m.rejected).filter((r) => r in m.rejected).map((r) => ({ id: `rej-${r}`, label: rejectionLabel(r), n: m.rejected[r] })),
    { id: "dead-lettered", label: "Dead-lettered messages", n: m.dead_lettered },
  ];
  sync(parts.counts, counts, (x) => x.id, (x) => el("div", {}, el("dt"), el("dd", { id: x.id })), (div, x) => {
    setText(div.firstElementChild, x.label);
    setText(div.lastElementChild, fmt.format(x.n));
  });
  // Times to the minute, as the API serves them, in no order within a
  // minute: lines by position, not keyed rows.
  const list = (ol, items, text) => {
    const lines = items.length ? items.map(text) : ["none"];
    sync(ol, lines.map((t, i) => ({ i, t })), (x) => x.i, () => el("li"), (li, x) => setText(li, x.t));
  };
  list(parts.rejections, m.recent_rejections, (r) => `${toMinute(r.recorded_at)} — ${rejectionLabel(r.reason)}`);
  list(parts.deadLetters, m.recent_dead_letters, (x) => `${toMinute(x.received_at)} — ${x.topic}: ${x.reason}`);
}

// keyboardScroll watches boxes (a table's .scroll wrapper): one that
// scrolls sideways, on a narrow screen, and holds nothing focusable becomes
// a named tab stop, so the keyboard can scroll it (WCAG 2.1.1); one that
// fits is no stop.
export function keyboardScroll(boxes) {
  const focusable = "a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex='-1'])";
  const check = (box) => {
    const stop = box.scrollWidth > box.clientWidth + 1 && !box.querySelector(focusable);
    const table = box.querySelector("table");
    const heading = box.closest("article") && box.closest("article").querySelector("h2");
    const name = (table && table.caption && table.caption.textContent) || (heading && heading.textContent) || "Table";
    setAttrs(box, stop ? { tabindex: "0", role: "region", "aria-label": `${name} (scrolls sideways)` } : { tabindex: null, role: null, "aria-label": null });
  };
  const watch = new ResizeObserver((entries) => {
    for (const e of entries) check(e.target.classList.contains("scroll") ? e.target : e.target.parentElement);
  });
  for (const box of boxes) {
    watch.observe(box);
    if (box.firstElementChild) watch.observe(box.firstElementChild);
  }
}
