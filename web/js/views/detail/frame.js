// The parts every kind of detail shares: the per-dialog state, the words about each layer kind,
// the frame (title, prev/next, legend, input thumbnail), the weights loader, small drawing helpers.

import { scale, range, isDivergingKind, gradient, cssColor } from '../../colormap.js';
import { fmt } from '../../format.js';
import { inkOn, rgbOf } from '../../contrast.js';
import { paintGray } from '../input.js';

/** dialog -> its ui { cursor, loadWeights, onChannel, opener, key, view, incoming, sortBy, ... } */
export const uis = new WeakMap();
export const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
export const touch = () => window.matchMedia('(hover: none)').matches;

// the line under the title: what a layer kind does (logits and relu1d: the vector words for them)
export const ABOUT = {
  conv2d: 'Where this filter finds its pattern in the layer below: red where it matches, ' +
    'blue where the input looks like its opposite.',
  relu: 'The map before it with every negative value set to 0: what passes on to the next layer.',
  maxpool2d: 'Smaller than its input: each cell keeps the largest value of one window.',
  avgpool2d:
    'Smaller than its input: each cell is the mean of one window, so nothing is picked out.',
  batchnorm: 'Each channel shifted and scaled by statistics learnt in training, ' +
    'so values sit around 0 (blue below, red above).',
  tanh: 'The layer before squashed into \u22121 to 1: ' +
    'large values saturate, small ones pass almost unchanged.',
  sigmoid: 'The layer before squashed into 0 to 1.',
  flatten:
    'All the maps of the layer before, laid out in one long row of numbers for the dense layers.',
  dense: 'Each unit weighs every value of the layer before and adds them up, plus a bias.',
  logits: 'The raw scores (logits): one per digit, before softmax turns them into probabilities.',
  relu1d: 'The dense layer\u2019s units with negatives set to 0.',
  dropout: 'Dropout only acts while training; here the values pass through unchanged.',
  softmax: 'The probability of each digit: softmax of the raw scores, all ten add up to 1.',
};


/** The detail view stretches each map to its own range. */
export function chScale(kind, data, off, n) {
  const [min, max] = range(data, off, n);
  return scale(min, max, isDivergingKind(kind, min));
}

/** The [row, col] of an H x W grid drawn on element el under pointer event e. */
export function cellUnder(el, e, H, W) {
  const r = el.getBoundingClientRect();
  return [
    clamp(Math.floor(((e.clientY - r.top) / r.height) * H), 0, H - 1),
    clamp(Math.floor(((e.clientX - r.left) / r.width) * W), 0, W - 1),
  ];
}

/** A canvas of W x H pixels, appended to parent. */
export function canvasFor(parent, cls, W, H) {
  const cv = document.createElement('canvas');
  cv.className = cls;
  cv.width = W;
  cv.height = H;
  parent.append(cv);
  return cv;
}

/** A coloured cell with readable text, for kernels and small vectors. */
export function colourCell(tag, value, sc, text) {
  const el = document.createElement(tag);
  const bg = cssColor(value, sc);
  el.style.background = bg;
  el.style.color = inkOn(rgbOf(bg));
  el.textContent = text;
  return el;
}

/** Columns and rows a vector of n units is drawn in: a strip up to 16, then a grid. */
export function unitGrid(n) {
  if (n <= 16) return [n, 1];
  const cols = n <= 256 ? 16 : Math.ceil(Math.sqrt(n));
  return [cols, Math.ceil(n / cols)];
}

/** Title, prev/next, legend and the input thumbnail: the parts maps and vectors share. */
export function frame(q, { title, sub, about, pos, count, what, sc, note, input }) {
  q('#detail-title').textContent = title;
  q('.detail-sub').textContent = sub;
  q('.detail-about').textContent = about;
  const ends = [['.prev', pos === 0, 'Previous'], ['.next', pos === count - 1, 'Next']];
  for (const [cls, off, word] of ends) {
    q(cls).setAttribute('aria-disabled', String(off));
    q(cls).setAttribute('aria-label', `${word} ${what}`);
  }
  q('.detail-map .lg-bar').style.background = gradient(sc.map);
  q('.detail-map .lg-lo').textContent = fmt(sc.lo);
  q('.detail-map .lg-hi').textContent = fmt(sc.hi);
  q('.lg-note').textContent = note;
  if (input) paintGray(q('.detail-rf .input-canvas'), input);
}

/** A layer's weights for the open view; null (and a message) on failure or if the view moved on. */
export async function weightsFor(dialog, name, head, cls) {
  const extra = dialog.querySelector('.detail-extra');
  const ui = uis.get(dialog);
  const key = ui.key;
  extra.innerHTML = `${head}<p class="muted ${cls}">Loading weights\u2026</p>`;
  try {
    const w = await ui.loadWeights(name);
    return ui.key === key ? w : null; // (the user moved on meanwhile)
  } catch (err) {
    if (ui.key !== key) return null;
    extra.innerHTML = `${head}<p class="error-text ${cls}" role="status"></p>`;
    extra.querySelector('p').textContent = `Could not load the weights of ${name}: ${err.message}`;
    return null;
  }
}
