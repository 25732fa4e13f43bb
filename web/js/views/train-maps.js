// The Train view's heatmaps: the first conv layer's kernels as a grid of small tiles with a colour
// legend, and the drawing as the job's weights read it (the answer, ten bars, the first maps).

import { range, scale, gradient, diverging } from '../colormap.js';
import { esc, fmt, percent } from '../format.js';
import { paintGrid } from '../tiles.js';
import { layerScale } from './layers.js';

const MAP_LAYERS = 3; // how many of the first layers with maps to show

/** The kernels' colour legend: blue (negative) to white (0) to red (positive). */
export function setupKernels(fig) {
  fig.querySelector('.lg-bar').style.background = gradient(diverging);
}

/** The kernels { name, shape: [F, C, kh, kw], data } (or null) as tiles, blue < 0 < red. */
export function renderKernels(fig, kernels, note) {
  const canvas = fig.querySelector('canvas');
  const cap = fig.querySelector('.tk-cap');
  canvas.hidden = !kernels;
  fig.querySelector('.legend').hidden = !kernels;
  if (!kernels) {
    cap.textContent = note;
    return;
  }
  const [F, C, kh, kw] = kernels.shape;
  const [lo, hi] = range(kernels.data);
  const sc = scale(lo, hi, true);
  paintGrid(canvas, kernels.data, [F * C, kh, kw], Math.min(F * C, 8), sc); // (F*C, kh, kw) tiles
  canvas.setAttribute('aria-label',
    `The ${F} filters of ${kernels.name}, ${kh} by ${kw} weights each`);
  cap.textContent =
    `${kernels.name}: ${F} filters of ${kh}\u00d7${kw}${C > 1 ? ` \u00d7 ${C} inputs` : ''}`;
  fig.querySelector('.lg-lo').textContent = fmt(sc.lo);
  fig.querySelector('.lg-hi').textContent = fmt(sc.hi);
}

/** Build the reading's ten probability rows once (the page's .probs markup). */
export function setupReading(box) {
  box.querySelector('.probs').innerHTML = [...Array(10).keys()]
    .map((d) => `<li class="prob"><span class="prob-digit">${d}</span>` +
      '<span class="prob-track"><span class="prob-bar"></span></span>' +
      '<span class="prob-pct">\u2013</span></li>')
    .join('');
}


/** The line above the reading: its error, else `note` (which step's weights read it). */
export function renderNote(box, reading, note) {
  box.querySelector('.tr-note').textContent = reading && reading.error ? reading.error : note;
  box.querySelector('.tr-note').classList.toggle('error-text', !!(reading && reading.error));
}

/** The drawing read by the job's weights: reading = { model, result, error } or null. */
export function renderReading(box, reading) {
  const result = reading && reading.result;
  box.querySelector('.digit').textContent = result ? String(result.label) : '';
  box.querySelectorAll('.prob').forEach((li, d) => {
    const p = result ? result.probabilities[d] : 0;
    li.querySelector('.prob-bar').style.transform = `scaleX(${p})`;
    li.querySelector('.prob-pct').textContent = result ? percent(p) : '\u2013';
    li.classList.toggle('top', !!result && d === result.label);
    li.setAttribute('aria-label', result ? `${d}: ${percent(p)}` : `${d}: no reading`);
  });
  const maps = box.querySelector('.tr-maps');
  const layers = result
    ? result.layers.filter((l) => l.shape.length === 3 && l.data).slice(0, MAP_LAYERS)
    : [];
  if (maps.dataset.names !== layers.map((l) => l.name).join()) {
    maps.dataset.names = layers.map((l) => l.name).join();
    maps.innerHTML = layers.map((l) =>
      `<figure><canvas role="img" aria-label="${esc(l.name)}: ${l.shape[0]} maps"></canvas>` +
      `<figcaption>${esc(l.name)} \u00b7 ${l.shape[0]} maps</figcaption></figure>`).join('');
  }
  layers.forEach((l, i) => {
    const sc = layerScale(l.kind, l.data.data);
    paintGrid(maps.children[i].firstChild, l.data.data, l.shape, 8, sc);
  });
}
