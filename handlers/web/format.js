// Formatting, labels, colours and the DOM helpers every part of the page
// shares. Every text goes through textContent; nothing here touches the
// network.

const SVG = "http://www.w3.org/2000/svg";
// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

export const fmt = new Intl.NumberFormat();
export const pct = (x, digits = 1) => `${(x * 100).toFixed(digits)}%`;
// To the minute, as the API serves monitoring times: a time to the second,
// next to a station's queue, could tell whose vote was rejected.
export const toMinute = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

// The rejection reasons' labels, in the order the page shows them: the one
// place the page names them. The API lists every reason it counts in
// summary.rejected; a reason missing here still shows, under its id.
const REJECTION_LABELS = new Map([
  ["duplicate_voter", "Duplicate voter"],
  ["unknown_voter", "Unknown voter"],
  ["unknown_candidate", "Unknown candidate"],
  ["wrong_station", "Wrong station"],
  ["unknown_contest", "Unknown contest"],
  ["not_eligible", "Not eligible"],
  ["outside_polls", "Outside polling hours"],
  ["implausible_time", "Implausible time"],
  ["after_station_close", "After station closed"],
  ["unknown_station", "Unknown station"],
]);
export const rejectionLabel = (reason) => REJECTION_LABELS.get(reason) || reason.replaceAll("_", " ");
// The reasons to show for a rejected-count map: the known ones in their
// order, then any other the API sends.
export function rejectionReasons(rejected) {
  const known = [...REJECTION_LABELS.keys()];
  return [...known, ...Object.keys(rejected).filter((r) => !REJECTION_LABELS.has(r)).sort()];
}

// --- DOM helpers ----------------------------------------------------------

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

export function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

// setText and setAttrs write only what changed, so an update leaves alone
// what a reader is looking at (a selection, a hovered title).
export function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

export function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) node.removeAttribute(k);
    else if (node.getAttribute(k) !== String(v)) node.setAttribute(k, v);
  }
}

// sync makes parent's children match items, one per key, in order: nodes
// are kept and updated in place, created only for new keys, removed only
// for keys gone, and moved only when the order changed. A focused node
// therefore keeps its focus through an update.
export function sync(parent, items, keyOf, create, update) {
  const keys = items.map((item) => String(keyOf(item)));
  const wanted = new Set(keys);
  const old = new Map();
  for (const child of [...parent.children]) {
    const k = child.dataset.key;
    if (k === undefined || !wanted.has(k) || old.has(k)) child.remove();
    else old.set(k, child);
  }
  let prev = null;
  items.forEach((item, i) => {
    let node = old.get(keys[i]);
    if (!node) {
      node = create(item);
      node.dataset.key = keys[i];
    }
    update(node, item);
    const at = prev ? prev.nextElementSibling : parent.firstElementChild;
    if (node !== at) parent.insertBefore(node, at);
    prev = node;
  });
}

// --- colours and avatars --------------------------------------------------

// Colors gives each candidate a colour for the session, in the order of
// their ids, so a candidate keeps its colour as the standings change.
export class Colors {
  constructor() {
    this.colors = new Map();
    this.names = new Map();
  }

  assign(candidates) {
    for (const id of candidates.map((c) => c.candidate_id).sort()) {
      if (!this.colors.has(id)) this.colors.set(id, PALETTE[this.colors.size % PALETTE.length]);
    }
    for (const c of candidates) this.names.set(c.candidate_id, c.name);
  }

  // pin fixes a candidate's colour (a measure's Yes and No).
  pin(id, color) { this.colors.set(id, color); }

  of(id) { return this.colors.get(id) || "#9ca3af"; }

  nameOf(id) { return this.names.get(id) || id; }
}

// --- contrast (WCAG 2) -----------------------------------------------------

// rgb reads "#rrggbb" or a computed "rgb(r, g, b)" as [r, g, b], 0–255.
export function rgb(color) {
  if (color.startsWith("#")) {
    const n = parseInt(color.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  const m = color.match(/\d+(\.\d+)?/g) || ["255", "255", "255"];
  return m.slice(0, 3).map(Number);
}

const hex = ([r, g, b]) => `#${[r, g, b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("")}`;

// luminance is WCAG 2's relative luminance of a colour.
export function luminance(color) {
  const [r, g, b] = rgb(color).map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

// contrastRatio is WCAG 2's contrast ratio of two colours, 1 to 21.
export function contrastRatio(a, b) {
  const [la, lb] = [luminance(a), luminance(b)];
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

// inkOn is the text colour for a background: black or white, whichever has
// the higher contrast ratio, so at least 4.58:1 on any colour.
export function inkOn(background) {
  return contrastRatio("#000000", background) >= contrastRatio("#ffffff", background) ? "#000000" : "#ffffff";
}

// toLuminance moves color towards black or white, in steps of the mix,
// until its relative luminance is target (luminance is monotonic in the
// mix, so bisection finds it).
function toLuminance(color, target) {
  const c = rgb(color);
  const to = luminance(color) > target ? [0, 0, 0] : [255, 255, 255];
  let lo = 0, hi = 1;
  for (let i = 0; i < 24; i++) {
    const t = (lo + hi) / 2;
    const l = luminance(hex(c.map((v, k) => v + (to[k] - v) * t)));
    if ((l > target) === (to[0] === 0)) lo = t; else hi = t;
  }
  return hex(c.map((v, k) => v + (to[k] - v) * hi));
}

// Tile shading: contrast ratios the tiles keep with the page behind them
// (3:1, WCAG 1.4.11; a little over, for rounding) and the widest lead
// shaded apart (20 points; wider leads look the same).
const TILE_MIN_CONTRAST = 3.1;
const TILE_FULL_MARGIN = 0.2;

// tileShade is a region's tile colour: the leader's hue, lighter the closer
// the race and darker the wider the lead, and never so light that the tile
// has less than 3:1 against page. Its text is then inkOn the result (never
// faded): shading by margin changes the tile, not the text's contrast.
export function tileShade(color, margin, page) {
  const pageL = luminance(page);
  // The lightest a tile may be on a light page, and the darkest on a dark
  // one, for 3:1.
  const light = pageL > 0.18;
  const bound = light ? (pageL + 0.05) / TILE_MIN_CONTRAST - 0.05 : TILE_MIN_CONTRAST * (pageL + 0.05) - 0.05;
  const far = light ? Math.max(0.02, bound * 0.3) : Math.min(0.9, bound + 0.55);
  const t = Math.min(1, Math.max(0, margin) / TILE_FULL_MARGIN);
  return toLuminance(color, bound + (far - bound) * t);
}

export function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

// setAvatar draws, in box, initials on the candidate's colour (no image
// host), redrawing only when the name or colour changed.
export function setAvatar(box, name, color) {
  const sig = `${name}|${color}`;
  if (box.dataset.sig === sig) return;
  box.dataset.sig = sig;
  const s = svg("svg", { viewBox: "0 0 40 40", "aria-hidden": "true" });
  s.append(svg("circle", { cx: 20, cy: 20, r: 20, fill: color }));
  s.append(svg("text", { x: 20, y: 25.5, "text-anchor": "middle", "font-size": 15, "font-weight": 700, fill: inkOn(color) }, initials(name)));
  box.replaceChildren(s);
}

export function swatch(color) {
  const s = el("span", { class: "swatch", "aria-hidden": "true" });
  s.style.background = color;
  return s;
}

// --- derived figures ------------------------------------------------------

export function margin(tallies, total) {
  if (!tallies.length || total === 0) return null;
  const first = tallies[0].votes;
  const second = tallies.length > 1 ? tallies[1].votes : 0;
  return { votes: first - second, share: (first - second) / total };
}

// regionRows are the default contest's regions from the dashboard, with
// each region's decided and reporting from details (the default contest's
// GET /api/v1/contests/default answer) once the page has it.
export function regionRows(d, colors, details) {
  const extra = new Map((details ? details.regions : []).map((r) => [r.region, r]));
  return d.regions.map((r) => {
    const m = margin(r.tallies, r.votes_cast);
    const x = extra.get(r.region);
    return {
      region: r.region, registered: r.registered_voters, votes: r.votes_cast, turnout: r.turnout,
      leaderId: r.leader_candidate_id, leader: r.leader_candidate_id ? colors.nameOf(r.leader_candidate_id) : "",
      margin: m ? m.share : -1, marginVotes: m ? m.votes : 0,
      decided: x ? x.decided : null, reporting: x ? x.reporting : null, out: false, withheld: !!r.withheld,
    };
  });
}

// contestRegionRows are a contest's regions (see GET /api/v1/contests/{id})
// as regionRows has them, plus a row marked out for each of the election's
// other regions (all), so the map can show them greyed.
export function contestRegionRows(c, all, colors) {
  const rows = c.regions.map((r) => {
    const m = margin(r.tallies, r.votes_cast);
    return {
      region: r.region, registered: r.eligible_voters, votes: r.votes_cast, turnout: r.turnout,
      leaderId: r.leader_candidate_id, leader: r.leader_candidate_id ? colors.nameOf(r.leader_candidate_id) : "",
      margin: m ? m.share : -1, marginVotes: m ? m.votes : 0,
      decided: r.decided, reporting: r.reporting, out: false, withheld: !!r.withheld,
    };
  });
  const open = new Set(rows.map((r) => r.region));
  for (const region of all) {
    if (open.has(region)) continue;
    rows.push({ region, registered: 0, votes: 0, turnout: 0, leaderId: null, leader: "", margin: -1, marginVotes: 0, decided: null, reporting: null, out: true });
  }
  return rows;
}

// reportingText says how far a region's or contest's stations have
// reported closing, or that none registered (never a made-up 0 %).
export function reportingText(rep) {
  if (!rep) return "—";
  if (!rep.available) return "no stations registered";
  return `${fmt.format(rep.stations_closed)} of ${fmt.format(rep.stations)}`;
}

export function describeRegion(r) {
  if (r.out) return `${r.region}: not in this contest`;
  const parts = [r.leaderId
    ? `${r.region}: ${r.leader} leads by ${pct(r.margin)} (${fmt.format(r.marginVotes)} votes); turnout ${pct(r.turnout)} of ${fmt.format(r.registered)} registered`
    : `${r.region}: no votes yet; ${fmt.format(r.registered)} registered`];
  if (r.decided) parts.push("decided (mathematically certain, not a race call)");
  if (r.reporting) parts.push(r.reporting.available ? `stations closed ${reportingText(r.reporting)}` : "no stations registered");
  return parts.join("; ");
}
