// The tile map: one button per region, coloured by its leader and shaded by
// the margin. Tiles are updated in place, so a tile that has the keyboard
// focus keeps it when a push arrives.

import { describeRegion, el, initials, inkOn, setAttrs, setText, sync, tileShade } from "./format.js";

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

// The map is one tab stop (a roving tabindex): Tab enters it on one tile,
// the arrow keys move between tiles as they lie, Home and End go to the
// first and last, and Tab leaves it. Each tile is a button whose name is
// its region code and, in text a screen reader reads, its figures; Enter
// or a click shows the region's row in the table. Hovering or focusing a
// tile describes it in tip, which is not a live region: moving over the
// map announces nothing.

// initMap wires map's keyboard, pointer and focus handling once; onPick is
// called with a tile's region when it is pressed.
export function initMap(map, tip, onPick) {
  map.addEventListener("keydown", (e) => {
    const tile = e.target.closest(".tile");
    if (!tile || e.altKey || e.ctrlKey || e.metaKey) return;
    const next = neighbour(map, tile, e.key);
    if (next === undefined) return;
    e.preventDefault();
    if (next) focusTile(map, next);
  });
  map.addEventListener("focusin", (e) => {
    const tile = e.target.closest(".tile");
    if (!tile) return;
    rove(map, tile);
    setText(tip, tile.dataset.description || "");
  });
  map.addEventListener("mouseover", (e) => {
    const tile = e.target.closest(".tile");
    if (tile) setText(tip, tile.dataset.description || "");
  });
  map.addEventListener("click", (e) => {
    const tile = e.target.closest(".tile");
    if (tile && tile.getAttribute("aria-disabled") !== "true") onPick(tile.dataset.region);
  });
}

// rove makes tile the map's one tab stop.
function rove(map, tile) {
  map.dataset.current = tile.dataset.region;
  for (const t of map.children) t.tabIndex = t === tile ? 0 : -1;
}

function focusTile(map, tile) {
  rove(map, tile);
  tile.focus();
}

// neighbour is the tile the key moves to from tile: null where there is
// none that way, undefined for a key the map does not handle. It goes by
// where the tiles are drawn, so it follows the geographic grid and the
// plain one alike.
function neighbour(map, tile, key) {
  const tiles = [...map.children].filter((t) => t.classList.contains("tile"));
  const box = (t) => {
    const r = t.getBoundingClientRect();
    return { t, x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width || 1, h: r.height || 1 };
  };
  const boxes = tiles.map(box);
  const here = box(tile);
  const reading = () => [...boxes].sort((a, b) => (Math.abs(a.y - b.y) < here.h / 2 ? a.x - b.x : a.y - b.y));
  if (key === "Home") return reading()[0].t;
  if (key === "End") return reading().at(-1).t;
  const dir = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[key];
  if (!dir) return undefined;
  let best = null, bestScore = Infinity;
  for (const b of boxes) {
    if (b.t === tile) continue;
    const dx = (b.x - here.x) / here.w, dy = (b.y - here.y) / here.h;
    // Left and right stay in the row; up and down go to the nearest tile
    // that way, preferring the same column.
    const along = dir[0] ? dx * dir[0] : dy * dir[1];
    const across = dir[0] ? Math.abs(dy) : Math.abs(dx);
    if (along < 0.5 || (dir[0] && across >= 0.5)) continue;
    const score = along + 3 * across;
    if (score < bestScore) { best = b.t; bestScore = score; }
  }
  return best;
}

// renderMap shows rows (see regionRows) in map; tip describes the tile
// hovered or focused.
export function renderMap(map, tip, rows, colors) {
  const geographic = rows.length > 0 && rows.every((r) => US_TILES[r.region]);
  map.classList.toggle("plain", !geographic);
  const page = surface(map);
  sync(map, rows, (r) => r.region, (r) => el("button", { type: "button", class: "tile", "data-region": r.region, tabindex: "-1" },
    el("span", { class: "code", text: r.region }), el("small", { "aria-hidden": "true" }), el("span", { class: "visually-hidden" })), (tile, r) => {
    const text = describeRegion(r);
    tile.dataset.description = text;
    // The name starts with the code the tile shows, and goes on with the
    // figures: what a screen reader says as the arrow keys move.
    setText(tile.lastElementChild, text.startsWith(r.region) ? text.slice(r.region.length) : `: ${text}`);
    setAttrs(tile, { "aria-disabled": r.out ? "true" : null });
    setText(tile.querySelector("small"), r.out ? "" : (r.leaderId ? initials(r.leader) : "–") + (r.decided ? " ✓" : ""));
    tile.classList.toggle("out", r.out);
    tile.classList.toggle("decided", !!r.decided);
    const [row, col] = geographic ? US_TILES[r.region] : [null, null];
    tile.style.gridRow = geographic ? String(row + 1) : "";
    tile.style.gridColumn = geographic ? String(col + 1) : "";
    tile.classList.toggle("none", !r.leaderId && !r.out);
    if (r.leaderId) {
      // The leader's colour, shaded by margin to a contrast it keeps with
      // the page; the text is black or white by contrast, never faded.
      const shade = tileShade(colors.of(r.leaderId), r.margin, page);
      tile.style.background = shade;
      tile.style.color = inkOn(shade);
    } else {
      tile.style.background = tile.style.color = "";
    }
    // The focused tile's description follows the figures.
    if (document.activeElement === tile) setText(tip, text);
  });
  // One tile is the tab stop: the one last focused while it is still
  // there and in the contest (or has the focus), else the first in the
  // contest.
  const tiles = [...map.children];
  const open = (t) => t.getAttribute("aria-disabled") !== "true";
  const last = tiles.find((t) => t.dataset.region === map.dataset.current);
  const current = (last && (open(last) || last === document.activeElement) ? last : null) || tiles.find(open) || tiles[0];
  if (current && current.tabIndex !== 0 || tiles.filter((t) => t.tabIndex === 0).length > 1) rove(map, current);
}

// surface is the colour the map is drawn on: its nearest ancestor's
// background that is not transparent.
function surface(node) {
  for (let n = node; n; n = n.parentElement) {
    const bg = getComputedStyle(n).backgroundColor;
    if (bg && !/^transparent$|rgba\([^)]*,\s*0\)$/.test(bg)) return bg;
  }
  return "#ffffff";
}
