// Colormaps as 256-entry RGB lookup tables built from a few stops, and helpers that paint
// typed arrays straight into ImageData (no per-pixel DOM, no per-pixel allocation).

// viridis (matplotlib, CC0), 17 evenly spaced stops.
const VIRIDIS = ['440154', '48186a', '472d7b', '424086', '3b528b', '33638d', '2c728e', '26828e',
  '21918c', '1f9f88', '27ad81', '3dbc74', '5cc863', '81d34d', 'aadc32', 'd5e21a', 'fde725'];
// ColorBrewer RdBu (11 classes) reversed: blue = negative, near-white = 0, red = positive.
const RDBU = ['053061', '2166ac', '4393c3', '92c5de', 'd1e5f0', 'f7f7f7', 'fddbc7', 'f4a582',
  'd6604d', 'b2182b', '67001f'];

function buildLut(stops) {
  const rgb = stops.map((h) => [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)));
  const lut = new Uint8ClampedArray(256 * 3);
  const n = rgb.length - 1;
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * n;
    const j = Math.min(n - 1, Math.floor(x));
    const t = x - j;
    for (let k = 0; k < 3; k++) lut[i * 3 + k] = rgb[j][k] + (rgb[j + 1][k] - rgb[j][k]) * t;
  }
  return { stops, lut };
}

export const sequential = buildLut(VIRIDIS);
export const diverging = buildLut(RDBU);

/** min and max of data[start, start+count), ignoring NaN. */
export function range(data, start = 0, count = data.length - start) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = start, end = start + count; i < end; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/**
 * A colour scale for values in [min, max]. Diverging scales are centred at 0 and symmetric
 * (by max |value|); sequential ones span [min, max].
 */
export function scale(min, max, isDiverging) {
  if (isDiverging) {
    const m = Math.max(Math.abs(min), Math.abs(max)) || 1;
    return { map: diverging, lo: -m, hi: m, diverging: true, min, max };
  }
  const hi = max > min ? max : min + 1;
  return { map: sequential, lo: min, hi, diverging: false, min, max };
}

/** Which kind of scale a layer's values get: conv and dense are signed, ReLU/pool/softmax not. */
export function isDivergingKind(kind, min) {
  if (kind === 'conv2d' || kind === 'dense') return true;
  if (kind === 'relu' || kind === 'maxpool2d' || kind === 'softmax') return false;
  return min < 0;
}

/** Paint count values of src (from offset) into rgba (from pixel 0) with a scale. */
export function paint(rgba, src, offset, count, sc) {
  const lut = sc.map.lut;
  const k = 255 / (sc.hi - sc.lo);
  const lo = sc.lo;
  for (let i = 0; i < count; i++) {
    let t = ((src[offset + i] - lo) * k + 0.5) | 0; // NaN -> 0
    if (t < 0) t = 0;
    else if (t > 255) t = 255;
    const o = i * 4;
    const l = t * 3;
    rgba[o] = lut[l];
    rgba[o + 1] = lut[l + 1];
    rgba[o + 2] = lut[l + 2];
    rgba[o + 3] = 255;
  }
}

const images = new WeakMap(); // canvas -> reusable ImageData

/** Paint a map onto a canvas whose width*height equals count. */
export function paintCanvas(canvas, src, offset, sc) {
  const ctx = canvas.getContext('2d');
  let img = images.get(canvas);
  if (!img || img.width !== canvas.width || img.height !== canvas.height) {
    img = ctx.createImageData(canvas.width, canvas.height);
    images.set(canvas, img);
  }
  paint(img.data, src, offset, Math.min(img.width * img.height, src.length - offset), sc);
  ctx.putImageData(img, 0, 0);
}

function lutAt(value, sc) {
  const level = Math.round(((value - sc.lo) / (sc.hi - sc.lo)) * 255) || 0;
  const t = Math.max(0, Math.min(255, level)) * 3;
  return sc.map.lut.subarray(t, t + 3);
}

/** Colour of one value as an rgb() string (for HTML cells). */
export function cssColor(value, sc) {
  return `rgb(${lutAt(value, sc).join(',')})`;
}

/** A CSS linear-gradient for legends. */
export function gradient(map) {
  return `linear-gradient(to right, ${map.stops.map((h) => '#' + h).join(', ')})`;
}

// One colour a digit, for plots of labelled digits: Paul Tol's muted scheme (made to stay apart
// for the common kinds of colour blindness) with dark grey as a tenth, ordered so the pairs
// networks confuse (4 and 9, 3 and 5, 7 and 1) get far-apart colours. Never the only cue: the
// views that use them say the digit in words too.
export const DIGIT_COLOURS = ['#cc6677', '#332288', '#ddcc77', '#117733', '#88ccee', '#aa4499',
  '#44aa99', '#882255', '#999933', '#555555'];
