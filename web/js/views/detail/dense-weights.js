// A dense unit's incoming weights: the strongest in a table (by size, or by effect on this
// drawing), the bias and the sum, and all of them painted as one small map.

import { scale, paintCanvas } from '../../colormap.js';
import { esc, fmt } from '../../format.js';
import { uis, canvasFor, colourCell, unitGrid, weightsFor } from './frame.js';

const TOP_WEIGHTS = 8;
// the two orders of the table: by size of weight, or by what each adds for this drawing
const SORT = '<div class="sort" role="group" aria-label="Largest by">' +
  '<button type="button" class="btn" data-sort="weight">size of weight</button>' +
  '<button type="button" class="btn" data-sort="now">effect on this drawing</button></div>';

/** A dense unit's strongest incoming weights, with what each contributes for this drawing. */
export async function renderIncoming(dialog, name, u, prev, label) {
  const extra = dialog.querySelector('.detail-extra');
  const ui = uis.get(dialog);
  const head = `<h3>${esc(label)}: strongest incoming weights</h3>`;
  const w = await weightsFor(dialog, name, head, 'weights');
  if (!w) return;
  if (!w.weight || w.weight.shape.length !== 2) {
    extra.innerHTML = `${head}<p class="muted weights">This layer reports no weight matrix.</p>`;
    return;
  }
  const [, I] = w.weight.shape; // (out_features, in_features)
  const row = w.weight.data.subarray(u * I, (u + 1) * I);
  const x = prev && prev.data && prev.data.data.length === I ? prev.data.data : null;
  const bias = w.bias ? w.bias.data[u] : 0;
  let sum = bias;
  if (x) for (let j = 0; j < I; j++) sum += row[j] * x[j];
  const from = prev ? esc(prev.name) : 'input';
  const peak = Math.max(...Array.from(row, Math.abs)) || 1;
  ui.incoming = { row, x, from, wsc: scale(-peak, peak, true) };
  extra.innerHTML = `${head}<p class="muted">Out of ${I} weights from ${from}, ` +
    `the ${TOP_WEIGHTS} largest. Positive ones (red) raise the unit when their input is high, ` +
    'negative ones (blue) lower it.</p>' +
    (x ? SORT : '') +
    '<table class="weights"></table>';
  fillWeights(dialog);
  const sums = x ? ` Bias + all ${I} weight \u00d7 value products = ${esc(fmt(sum))}, ` +
    'the unit\u2019s value (up to rounding in transit).' : '';
  extra.insertAdjacentHTML('beforeend', `<p class="muted sum">Bias ${esc(fmt(bias))}.${sums}</p>` +
    `<h4>All ${I} incoming weights (blue \u2212, red +)</h4>`);
  const [cols, rows] = unitGrid(I);
  const cv = canvasFor(extra, 'weights-map', cols, rows);
  cv.style.aspectRatio = `${cols} / ${rows}`;
  cv.setAttribute('role', 'img');
  cv.setAttribute('aria-label', `The ${I} incoming weights of unit ${u}, ${cols} to a row`);
  paintCanvas(cv, row, 0, ui.incoming.wsc);
}

/** The top-weights table, ordered by |weight| or by |weight x value| for this drawing. */
export function fillWeights(dialog) {
  const ui = uis.get(dialog);
  const { row, x, from, wsc } = ui.incoming;
  const byNow = ui.sortBy === 'now' && x;
  const size = byNow ? (j) => Math.abs(row[j] * x[j]) : (j) => Math.abs(row[j]);
  const order = Array.from(row.keys()).sort((a, b) => size(b) - size(a)).slice(0, TOP_WEIGHTS);
  dialog.querySelectorAll('[data-sort]').forEach((b) =>
    b.setAttribute('aria-pressed', String(b.dataset.sort === (byNow ? 'now' : 'weight'))));
  const table = dialog.querySelector('table.weights');
  const products = x
    ? '<th scope="col">its value now</th><th scope="col">weight \u00d7 value</th>' : '';
  table.innerHTML = `<thead><tr><th scope="col">${from} unit</th><th scope="col">weight</th>` +
    `${products}</tr></thead>`;
  const body = document.createElement('tbody');
  for (const j of order) {
    const tr = document.createElement('tr');
    tr.innerHTML = `<th scope="row">${j}</th>`;
    tr.append(colourCell('td', row[j], wsc, fmt(row[j])));
    if (x) {
      tr.insertAdjacentHTML('beforeend',
        `<td>${esc(fmt(x[j]))}</td><td>${esc(fmt(row[j] * x[j]))}</td>`);
    }
    body.append(tr);
  }
  table.append(body);
}
