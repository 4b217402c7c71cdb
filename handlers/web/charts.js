// The charts: votes per candidate as bars and a donut, and votes per minute.
// Drawn in SVG here, no library; each mark is kept and moved, not redrawn.

import { el, fmt, pct, setAttrs, setText, svg, swatch, sync, toMinute } from "./format.js";

// layer returns chart's group named name, made on first use, so the parts
// of a chart keep their order and their nodes.
function layer(chart, name) {
  let g = chart.querySelector(`:scope > g[data-layer="${name}"]`);
  if (!g) {
    g = svg("g", { "data-layer": name });
    chart.append(g);
  }
  return g;
}

// node returns parent's child made by make under key, made on first use.
function node(parent, key, make) {
  let n = parent.querySelector(`:scope > [data-part="${key}"]`);
  if (!n) {
    n = make();
    n.dataset.part = key;
    parent.append(n);
  }
  return n;
}

function setTitle(mark, text) {
  setText(node(mark, "title", () => svg("title")), text);
}

// legend lists the candidates with their colour; extra adds to the label.
export function renderLegend(list, candidates, colors, extra = () => "") {
  sync(list, candidates, (c) => c.candidate_id, () => el("li", {}, swatch(""), el("span")), (li, c) => {
    li.dataset.candidateId = c.candidate_id;
    li.firstElementChild.style.background = colors.of(c.candidate_id);
    setText(li.lastElementChild, c.name + extra(c));
  });
}

export function renderBars(chart, candidates, colors) {
  const rowH = 30, labelW = 130, w = 420;
  const h = Math.max(rowH * candidates.length + 10, 40);
  // The chart's marks are an image to a screen reader; its name carries
  // the figures.
  setAttrs(chart, { viewBox: `0 0 ${w} ${h}`, "aria-label": `Bar chart of votes per candidate: ${candidates.map((c) => `${c.name}, ${fmt.format(c.votes)}`).join("; ") || "no candidates"}` });
  const max = Math.max(1, ...candidates.map((c) => c.votes));
  const rows = candidates.map((c, i) => ({ c, y: 5 + i * rowH, bw: ((w - labelW - 70) * c.votes) / max }));
  sync(layer(chart, "bars"), rows, (r) => r.c.candidate_id, () => {
    const g = svg("g");
    g.append(svg("text", { "text-anchor": "end", "font-size": 12 }), svg("rect", { rx: 2 }), svg("text", { "font-size": 12 }));
    return g;
  }, (g, { c, y, bw }) => {
    const [name, bar, value] = g.children;
    setAttrs(name, { x: labelW - 6, y: y + 18 });
    setText(name, c.name);
    setAttrs(bar, { x: labelW, y: y + 4, width: Math.max(bw, 1), height: rowH - 10, fill: colors.of(c.candidate_id) });
    setAttrs(value, { x: labelW + bw + 6, y: y + 18 });
    setText(value, fmt.format(c.votes));
  });
}

export function renderDonut(chart, legend, candidates, colors) {
  const total = candidates.reduce((a, c) => a + c.votes, 0);
  setAttrs(chart, { "aria-label": `Donut chart of vote shares: ${candidates.map((c) => `${c.name}, ${pct(c.share)}`).join("; ") || "no candidates"}` });
  node(layer(chart, "ring"), "ring", () => svg("circle", { cx: 100, cy: 100, r: 70, fill: "none", stroke: "#e5e7eb", "stroke-width": 40 }));
  const C = 2 * Math.PI * 70;
  const arcs = [];
  let offset = 0;
  for (const c of candidates) {
    const len = total > 0 ? (C * c.votes) / total : 0;
    if (len <= 0) continue;
    arcs.push({ c, len, offset });
    offset += len;
  }
  sync(layer(chart, "arcs"), arcs, (a) => a.c.candidate_id,
    () => svg("circle", { cx: 100, cy: 100, r: 70, fill: "none", "stroke-width": 40, transform: "rotate(-90 100 100)" }),
    (arc, { c, len, offset }) => {
      setAttrs(arc, { stroke: colors.of(c.candidate_id), "stroke-dasharray": `${len} ${C - len}`, "stroke-dashoffset": -offset });
      setTitle(arc, `${c.name}: ${pct(c.votes / total)}`);
    });
  const labels = layer(chart, "labels");
  node(labels, "caption", () => svg("text", { x: 100, y: 97, "text-anchor": "middle", "font-size": 14, fill: "#57606a" }, "votes"));
  setText(node(labels, "total", () => svg("text", { x: 100, y: 117, "text-anchor": "middle", "font-size": 18, "font-weight": 700 })), fmt.format(total));
  renderLegend(legend, candidates, colors, (c) => ` — ${pct(c.share)}`);
}

export function renderTimeline(chart, legend, points, candidates, colors) {
  const w = 600, h = 220, left = 44, bottom = 24, top = 10, right = 10;
  setAttrs(chart, { viewBox: `0 0 ${w} ${h}` });
  const axes = layer(chart, "axes");
  const empty = node(axes, "empty", () => svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle", fill: "#57606a" }, "No votes yet"));
  const series = points.length ? candidates : [];
  empty.style.display = points.length ? "none" : "";
  for (const g of [layer(chart, "grid"), layer(chart, "series")]) g.style.display = points.length ? "" : "none";
  if (!points.length) {
    sync(layer(chart, "series"), [], () => "", () => svg("g"), () => {});
    renderLegend(legend, [], colors);
    return;
  }
  const t0 = new Date(points[0].minute).getTime();
  const t1 = new Date(points[points.length - 1].minute).getTime();
  const span = Math.max(t1 - t0, 60000);
  const max = Math.max(1, ...points.flatMap((p) => Object.values(p.votes)));
  const x = (t) => (left + ((w - left - right) * (t - t0)) / span).toFixed(1);
  const y = (v) => (h - bottom - ((h - bottom - top) * v) / max).toFixed(1);
  const grid = layer(chart, "grid");
  setAttrs(node(grid, "x-axis", () => svg("line", { stroke: "#9ca3af" })), { x1: left, y1: h - bottom, x2: w - right, y2: h - bottom });
  setAttrs(node(grid, "y-axis", () => svg("line", { stroke: "#9ca3af" })), { x1: left, y1: top, x2: left, y2: h - bottom });
  setText(node(grid, "max", () => svg("text", { x: left - 4, y: top + 10, "text-anchor": "end", "font-size": 11 })), fmt.format(max));
  node(grid, "zero", () => svg("text", { x: left - 4, y: h - bottom, "text-anchor": "end", "font-size": 11 }, "0"));
  setText(node(grid, "start", () => svg("text", { x: left, y: h - 6, "font-size": 11 })), toMinute(t0));
  setText(node(grid, "end", () => svg("text", { x: w - right, y: h - 6, "text-anchor": "end", "font-size": 11 })), toMinute(t1));
  sync(layer(chart, "series"), series, (c) => c.candidate_id, () => {
    const g = svg("g");
    g.append(svg("polyline", { fill: "none", "stroke-width": 2 }), svg("g"));
    return g;
  }, (g, c) => {
    const color = colors.of(c.candidate_id);
    const [line, dots] = g.children;
    setAttrs(line, { points: points.map((p) => `${x(new Date(p.minute).getTime())},${y(p.votes[c.candidate_id] || 0)}`).join(" "), stroke: color });
    setTitle(line, c.name);
    // Dots too: a single minute has no line to draw.
    sync(dots, points, (p) => p.minute, () => svg("circle", { r: 3 }), (dot, p) => {
      const n = p.votes[c.candidate_id] || 0;
      setAttrs(dot, { cx: x(new Date(p.minute).getTime()), cy: y(n), fill: color });
      setTitle(dot, `${c.name}: ${fmt.format(n)} votes at ${toMinute(p.minute)}`);
    });
  });
  renderLegend(legend, candidates, colors);
}
