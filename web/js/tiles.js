// A layer's C maps of H x W cells tiled on one canvas, `cols` tiles a row with `gap` clear pixels
// between them: one canvas and one putImageData a layer, where one canvas a channel cost the
// browser most of its time re-painting some 300 of them while a digit was drawn.

import { paint } from './colormap.js';

/** The tiling of C maps of H x W, cols tiles a row (at most C), gap pixels apart. */
export function tileLayout(C, H, W, cols, gap) {
  cols = Math.max(1, Math.min(C, cols));
  const rows = Math.ceil(C / cols);
  const width = cols * (W + gap) - gap;
  const height = rows * (H + gap) - gap;
  return { C, H, W, cols, rows, gap, width, height };
}

/** Tiles a row so that each is about `size` CSS px wide with `gapPx` between, in `width` px. */
export function columnsFor(width, size, gapPx) {
  return Math.max(1, Math.floor((width + gapPx) / (size + gapPx)));
}

/** Canvas pixel of tile t's top-left cell. */
export function tileOrigin(L, t) {
  return [(t % L.cols) * (L.W + L.gap), Math.floor(t / L.cols) * (L.H + L.gap)];
}

/** { t, r, c } under canvas position (x, y) (fractional pixels), or null over a gap or no tile. */
export function cellAt(L, x, y) {
  const tx = Math.floor(x / (L.W + L.gap));
  const ty = Math.floor(y / (L.H + L.gap));
  const c = Math.floor(x - tx * (L.W + L.gap));
  const r = Math.floor(y - ty * (L.H + L.gap));
  const t = ty * L.cols + tx;
  if (x < 0 || y < 0 || tx >= L.cols || c >= L.W || r >= L.H || t >= L.C) return null;
  return { t, r, c };
}

/** Paint data [C, H, W] into rgba (L.width x L.height) with a colour scale; gaps are untouched. */
export function paintTiles(rgba, data, L, sc) {
  const { C, H, W, width } = L;
  for (let t = 0; t < C; t++) {
    const [x0, y0] = tileOrigin(L, t);
    for (let r = 0; r < H; r++) {
      paint(rgba.subarray(((y0 + r) * width + x0) * 4), data, (t * H + r) * W, W, sc);
    }
  }
}

const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));

/** Paint (C, H, W) maps as tiles, `cols` a row, on a canvas sized to fit; returns the layout. */
export function paintGrid(canvas, data, [C, H, W], cols, sc) {
  const L = tileLayout(C, H, W, cols, 1);
  if (canvas.width !== L.width) canvas.width = L.width;
  if (canvas.height !== L.height) canvas.height = L.height;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(L.width, L.height);
  paintTiles(img.data, data, L, sc);
  ctx.putImageData(img, 0, 0);
  return L;
}

/**
 * The cursor { t, r, c } after a key, or null for a key that does not move it. Arrows step one
 * cell and run on into the next tile in that direction, so the tiles read as one big grid;
 * with Shift they jump a whole tile, keeping the cell; Home and End go to the first and the last
 * tile (in a single tile: its first and last cell). Nothing moves past the edges or the last tile.
 */
export function moveCursor(L, { t, r, c }, key, shift = false) {
  const step = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[key];
  if (key === 'Home' || key === 'End') {
    const first = key === 'Home';
    if (L.C > 1) return { t: first ? 0 : L.C - 1, r, c };
    return first ? { t: 0, r: 0, c: 0 } : { t: 0, r: L.H - 1, c: L.W - 1 }; // one tile: its ends
  }
  if (!step) return null;
  const [dr, dc] = step;
  let tx = t % L.cols;
  let ty = Math.floor(t / L.cols);
  if (shift) {
    tx += dc;
    ty += dr;
  } else {
    r += dr;
    c += dc;
    if (c < 0 || c >= L.W) tx += dc;
    if (r < 0 || r >= L.H) ty += dr;
  }
  const next = ty * L.cols + tx;
  if (tx < 0 || tx >= L.cols || ty < 0 || next >= L.C) {
    return { t, r: clamp(r, 0, L.H - 1), c: clamp(c, 0, L.W - 1) };
  }
  return { t: next, r: (r + L.H) % L.H, c: (c + L.W) % L.W };
}

/** Place a box over cells rows r0..r1, cols c0..c1 of a canvas that fills its box (in %). */
export function placeBox(el, L, r0, c0, r1 = r0, c1 = c0) {
  el.hidden = false;
  el.style.left = `${(c0 / L.width) * 100}%`;
  el.style.top = `${(r0 / L.height) * 100}%`;
  el.style.width = `${((c1 - c0 + 1) / L.width) * 100}%`;
  el.style.height = `${((r1 - r0 + 1) / L.height) * 100}%`;
}
