// Compare mode: the drawing read by two models side by side. Their answers, the ten
// probabilities in one table (a column a model), and each model's layers as small tiled maps in
// two columns (one above the other on a phone).

import { gradient, diverging, sequential, paintCanvas } from '../colormap.js';
import { esc, fmt, percent } from '../format.js';
import { paintGrid } from '../tiles.js';
import { kindLabel, layerScale } from './layers.js';
import { options, fill } from './model-picker.js';


export function setupCompare(section, { onPick }) {
  section.querySelector('select').addEventListener('change', (e) => onPick(e.target.value));
  section.querySelector('.cmp-div').style.background = gradient(diverging);
  section.querySelector('.cmp-seq').style.background = gradient(sequential);
}

/** A bar and a percentage in a table cell (styles through the CSSOM: the CSP allows no inline). */
function probCell(p, top) {
  const td = document.createElement('td');
  td.className = top ? 'top' : '';
  td.innerHTML = '<span class="cmp-p">' +
    '<span class="prob-track"><span class="prob-bar"></span></span><span class="prob-pct"></span>' +
    '</span>';
  td.querySelector('.prob-bar').style.transform = `scaleX(${Math.min(1, Math.max(0, p))})`;
  td.querySelector('.prob-pct').textContent = percent(p);
  return td;
}

function probTable(table, names, answers) {
  table.tHead.rows[0].innerHTML = '<th scope="col">digit</th>' +
    names.map((n) => `<th scope="col">${esc(n)}</th>`).join('');
  const body = table.tBodies[0];
  body.replaceChildren();
  for (let d = 0; d < 10; d++) {
    const tr = body.insertRow();
    tr.innerHTML = `<th scope="row">${d}</th>`;
    for (const a of answers) tr.append(probCell(a.probabilities[d], d === a.label));
  }
}

/** One layer, small: its maps tiled (about square) or its vector as a strip or grid. */
function layerRow(layer) {
  const li = document.createElement('li');
  const { shape, data } = layer.data;
  const sc = layerScale(layer.kind, data);
  li.innerHTML = `<span class="cmp-name">${esc(layer.name)}</span> ` +
    `<span class="chip" data-kind="${esc(layer.kind)}">` +
    `${esc(kindLabel({ kind: layer.kind }))}</span> ` +
    `<span class="shape">${shape.join(' \u00d7 ')}</span>` +
    `<span class="cmp-range">${fmt(sc.min)} to ${fmt(sc.max)}</span>`;
  const cv = document.createElement('canvas');
  cv.setAttribute('role', 'img');
  const n = data.length;
  if (shape.length === 3) {
    const [C, H, W] = shape;
    const L = paintGrid(cv, data, shape, Math.ceil(Math.sqrt(2 * C)), sc);
    cv.style.width = `${L.width * 1.5}px`;
    cv.setAttribute('aria-label',
      `${layer.name}: ${C} maps of ${H} by ${W}, values ${fmt(sc.min)} to ${fmt(sc.max)}`);
  } else {
    const cols = n <= 64 ? n : Math.ceil(Math.sqrt(n * 4));
    Object.assign(cv, { width: cols, height: Math.ceil(n / cols) });
    cv.className = 'strip';
    paintCanvas(cv, data, 0, sc);
    cv.style.aspectRatio = `${cv.width} / ${cv.height}`;
    cv.setAttribute('aria-label',
      `${layer.name}: ${n} values from ${fmt(sc.min)} to ${fmt(sc.max)}`);
  }
  li.append(cv);
  return li;
}

/**
 * Render from state: compare = { with, names: [a, b], answers: [a, b] | null, busy, error };
 * left = the model the page reads with.
 */
export function render(section, { compare, models, left, drawn }) {
  section.hidden = !compare;
  if (!compare) return;
  const others = (models || []).filter((m) => m.name !== left);
  fill(section.querySelector('select'), options(others, [compare.with]), compare.with || '');
  const status = section.querySelector('.cmp-status');
  const table = section.querySelector('table');
  const cols = section.querySelector('.cmp-cols');
  const answers = compare.answers;
  status.textContent = compare.error || (!drawn ? 'Draw a digit to see both models read it.'
    : compare.busy ? 'Asking both models\u2026' : '');
  status.classList.toggle('error-text', !!compare.error);
  table.hidden = !answers;
  if (!answers) {
    section.drawnAnswers = null;
    return cols.replaceChildren();
  }
  if (section.drawnAnswers === answers) return; // only the status changed (a live result)
  section.drawnAnswers = answers;
  probTable(table, compare.names, answers);
  cols.replaceChildren(...answers.map((a, i) => {
    const col = document.createElement('section');
    col.className = 'cmp-col';
    col.dataset.testid = 'compare-column';
    col.setAttribute('aria-label', `Layers of ${compare.names[i]}`);
    col.innerHTML = `<h3>${esc(compare.names[i])}</h3>` +
      `<p class="cmp-answer">reads <b data-testid="compare-prediction">${a.label}</b> ` +
      `${percent(a.probabilities[a.label])} sure</p><ol class="cmp-layers"></ol>`;
    col.querySelector('ol').append(...a.layers.filter((l) => l.data).map(layerRow));
    return col;
  }));
}
