// The tile map: one button per region, coloured by its leader and shaded by
// the margin. Tiles are updated in place, so a tile that has the keyboard
// focus keeps it when a push arrives.

import { describeRegion, el, initials, inkOn, setAttrs, setText, sync } from "./format.js";

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

// renderMap shows rows (see regionRows) in map; tip describes the tile
// hovered or focused.
export function renderMap(map, tip, rows, colors) {
  const geographic = rows.length > 0 && rows.every((r) => US_TILES[r.region]);
  map.classList.toggle("plain", !geographic);
  const show = (e) => { tip.textContent = e.currentTarget.getAttribute("aria-label"); };
  sync(map, rows, (r) => r.region, (r) => {
    const tile = el("button", { type: "button", class: "tile", "data-region": r.region }, el("span", { class: "code", text: r.region }), el("small"));
    tile.addEventListener("mouseenter", show);
    tile.addEventListener("focus", show);
    return tile;
  }, (tile, r) => {
    const text = describeRegion(r);
    setAttrs(tile, { "aria-label": text, title: text });
    setAttrs(tile, { "aria-disabled": r.out ? "true" : null });
    setText(tile.querySelector("small"), r.out ? "" : (r.leaderId ? initials(r.leader) : "–") + (r.decided ? " ✓" : ""));
    tile.classList.toggle("out", r.out);
    tile.classList.toggle("decided", !!r.decided);
    const [row, col] = geographic ? US_TILES[r.region] : [null, null];
    tile.style.gridRow = geographic ? String(row + 1) : "";
    tile.style.gridColumn = geographic ? String(col + 1) : "";
    tile.classList.toggle("none", !r.leaderId && !r.out);
    if (r.leaderId) {
      const color = colors.of(r.leaderId);
      tile.style.background = color;
      tile.style.color = inkOn(color);
      // Closer races are lighter: opacity from 0.45 (tied) to 1 (20+ points).
      tile.style.opacity = String(0.45 + 0.55 * Math.min(1, r.margin / 0.2));
    } else {
      tile.style.background = tile.style.color = tile.style.opacity = "";
    }
    // The focused tile's description follows the figures.
    if (document.activeElement === tile) setText(tip, text);
  });
}
