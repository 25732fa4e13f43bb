// Model card: architecture table, parameter count, test accuracy, training curves (SVG) and the
// confusion matrix (a shaded table), from GET /api/v1/model. Where the model has an atlas, each
// count of the matrix is a button that shows its digits (confusion-digits.js fills the panel
// beside it), and the ten class inputs follow (class-inputs.js).

import { esc, percent, thousands } from '../format.js';
import { kindLabel } from './layers.js';
import { inkOn } from '../contrast.js';

const NS = 'http://www.w3.org/2000/svg';
const SERIES = [
  { key: 'train', label: 'train', color: '#0072b2', dash: '' },
  { key: 'val', label: 'validation', color: '#d55e00', dash: '6 4' },
];

function svg(tag, attrs, parent) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.append(el);
  return el;
}

/** A round tick spacing (1, 2 or 5 times a power of ten) giving about `count` gaps over span. */
export function niceStep(span, count) {
  const raw = span / count || 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Epoch ticks: the first, round multiples after it, the last; none closer than half a step. */
function epochTicks(x0, x1) {
  const step = Math.max(1, niceStep(x1 - x0, 5));
  const ticks = [x0];
  for (let x = Math.ceil((x0 + step / 2) / step) * step; x <= x1; x += step) ticks.push(x);
  if (x1 - ticks[ticks.length - 1] >= step / 2) ticks.push(x1);
  return ticks;
}

/** A small line chart of train vs validation per epoch. */
function chart(title, epochs, trainKey, valKey, asPercent) {
  const W = 320;
  const H = 180;
  const m = { l: 44, r: 10, t: 12, b: 30 };
  const fig = document.createElement('figure');
  fig.className = 'chart';
  const s = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title} per epoch, train and validation`,
  });
  const xs = epochs.map((e, i) => Number(e.epoch ?? i + 1));
  const series = SERIES.map((ser) => ({
    ...ser, ys: epochs.map((e) => Number(e[ser.key === 'train' ? trainKey : valKey])),
  }));
  const all = series.flatMap((ser) => ser.ys).filter(Number.isFinite);
  const min = all.length ? Math.min(...all) : 0;
  const max = all.length ? Math.max(...all) : 1;
  // round ticks around the data; a loss never goes below 0 nor an accuracy above 100%
  const step = niceStep(max - min || Math.abs(max) || 1, 4);
  const lo = Math.max(min >= 0 ? 0 : -Infinity, Math.floor(min / step) * step);
  let hi = Math.ceil(max / step) * step;
  if (asPercent) hi = Math.min(hi, Math.max(1, max));
  if (hi <= lo) hi = lo + step;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const X = (x) => m.l + (x1 > x0 ? ((x - x0) / (x1 - x0)) * (W - m.l - m.r) : (W - m.l - m.r) / 2);
  const Y = (y) => m.t + (1 - (y - lo) / (hi - lo)) * (H - m.t - m.b);
  const decimals = (v) => Math.max(0, -Math.floor(Math.log10(v) + 1e-9));
  const tickText = (y) =>
    (asPercent ? `${(y * 100).toFixed(decimals(step * 100))}%` : y.toFixed(decimals(step)));
  const f = (y) => (asPercent ? `${(y * 100).toFixed(2)}%` : y.toFixed(4));
  for (let i = 0; lo + i * step <= hi + step * 1e-6; i++) {
    const y = lo + i * step;
    svg('line', { x1: m.l, x2: W - m.r, y1: Y(y), y2: Y(y), class: 'grid' }, s);
    svg('text', { x: m.l - 6, y: Y(y) + 4, 'text-anchor': 'end', class: 'tick y' }, s)
      .textContent = tickText(y);
  }
  for (const x of epochTicks(x0, x1)) {
    svg('text', { x: X(x), y: H - m.b + 16, 'text-anchor': 'middle', class: 'tick x' }, s)
      .textContent = x;
  }
  svg('text', { x: (W + m.l) / 2, y: H - 2, 'text-anchor': 'middle', class: 'axis' }, s)
    .textContent = 'epoch';
  for (const ser of series) {
    const pts = xs.map((x, i) => [x, ser.ys[i]]).filter(([, y]) => Number.isFinite(y));
    if (!pts.length) continue;
    svg('polyline', {
      points: pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' '),
      fill: 'none', stroke: ser.color, 'stroke-width': 2, 'stroke-dasharray': ser.dash,
      'stroke-linejoin': 'round', 'stroke-linecap': 'round',
    }, s);
    for (const [x, y] of pts) {
      svg('circle', { cx: X(x), cy: Y(y), r: 2.5, fill: ser.color }, s).append(
        Object.assign(svg('title', {}), { textContent: `${ser.label}, epoch ${x}: ${f(y)}` }),
      );
    }
  }
  const cap = document.createElement('figcaption');
  cap.innerHTML = `<strong>${esc(title)}</strong>` + SERIES.map((ser) =>
    '<span class="key"><svg width="22" height="8" aria-hidden="true">' +
    `<line x1="1" x2="21" y1="4" y2="4" stroke="${ser.color}" stroke-width="2" ` +
    `stroke-dasharray="${ser.dash}"/></svg>${ser.label}</span>`).join('');
  fig.append(cap, s);
  return fig;
}

const ACCENT = [37, 84, 199];

function confusion(matrix, atlas) {
  const n = matrix.length;
  const t = document.createElement('table');
  t.className = 'confusion';
  t.innerHTML = '<caption>Each number counts test images: the row is the digit it really shows, ' +
    'the column the digit the network predicted. ' +
    'The diagonal is right; everything else is a mistake.' +
    `${atlas ? ' Press a number to see those digits (arrow keys move between them).' : ''}` +
    '</caption>';
  const thead = document.createElement('thead');
  thead.innerHTML = '<tr><td colspan="2" rowspan="2"></td>' +
    `<th colspan="${n}" scope="colgroup" class="axis-x">predicted digit</th></tr>` +
    `<tr>${Array.from({ length: n }, (_, j) => `<th scope="col">${j}</th>`).join('')}</tr>`;
  const tbody = document.createElement('tbody');
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + Number(b), 0) || 1;
    const tr = document.createElement('tr');
    tr.innerHTML = (i ? ''
      : `<th rowspan="${n}" scope="rowgroup" class="axis-y"><span>true digit</span></th>`) +
      `<th scope="row">${i}</th>`;
    row.forEach((count, j) => {
      const td = document.createElement('td');
      const share = Number(count) / total;
      // sqrt makes the rare mistakes visible next to the big diagonal
      const t01 = Math.sqrt(share);
      if (count > 0) {
        const a = 0.06 + 0.94 * t01;
        const rgb = ACCENT.map((c) => Math.round(255 + (c - 255) * a)); // the accent over white
        td.style.background = `rgb(${rgb.join(',')})`;
        td.style.color = inkOn(rgb);
      }
      if (atlas) {
        // one tab stop for the whole matrix: the arrow keys move between its cells
        const b = document.createElement('button');
        Object.assign(b, {
          type: 'button', className: 'conf-cell', textContent: count, tabIndex: i || j ? -1 : 0,
        });
        Object.assign(b.dataset, {
          testid: `confusion-cell-${i}-${j}`, truth: i, predicted: j, count,
        });
        b.setAttribute('aria-label', `${count}: true ${i}, predicted ${j}; show these digits`);
        b.setAttribute('aria-pressed', 'false');
        td.className = 'pick';
        td.append(b);
      } else {
        td.textContent = count;
      }
      td.title = `true ${i}, predicted ${j}: ${count} (${percent(share)} of ${i}s)`;
      if (i === j) td.classList.add('diag');
      tr.append(td);
    });
    tbody.append(tr);
  });
  t.append(thead, tbody);
  const key = document.createElement('p');
  key.className = 'conf-key';
  key.innerHTML = '<span>Shading, the share of the row\u2019s images:</span><span>none</span>' +
    '<span class="lg-bar conf-bar" aria-hidden="true"></span><span>all</span>';
  const wrap = document.createElement('div');
  wrap.className = 'table-scroll';
  wrap.append(t);
  const frag = document.createDocumentFragment();
  frag.append(wrap, key);
  return frag;
}

/** Wire the matrix's buttons: onCell(truth, predicted) when one is pressed. */
const STEPS = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

/** Wire the matrix's buttons: onCell(truth, predicted, count) when one is pressed; the arrow
 * keys (Home, End) move the focus from cell to cell. */
export function setupModelCard(container, { onCell }) {
  const cell = (b) => [Number(b.dataset.truth), Number(b.dataset.predicted)];
  container.addEventListener('click', (e) => {
    const b = e.target.closest('.conf-cell');
    if (b) onCell(...cell(b), Number(b.dataset.count));
  });
  container.addEventListener('keydown', (e) => {
    const b = e.target.closest('.conf-cell');
    const step = STEPS[e.key];
    if (!b || e.altKey || e.ctrlKey || e.metaKey || !(step || /^(Home|End)$/.test(e.key))) return;
    e.preventDefault();
    const n = container.querySelectorAll('.confusion tbody tr').length;
    const [i, j] = cell(b);
    const [r, c] = step ? [i + step[0], j + step[1]] : [i, e.key === 'Home' ? 0 : n - 1];
    const next = container.querySelector(`[data-testid="confusion-cell-${r}-${c}"]`);
    if (!next) return;
    b.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  });
}

export function render(container, { model, modelError }) {
  const body = container.querySelector('.model-body');
  if (!model) {
    body.innerHTML = `<p class="${modelError ? 'error-text' : 'muted'}"></p>`;
    body.firstChild.textContent = modelError
      ? `Could not load the model description: ${modelError}`
      : 'Loading the model description\u2026';
    return;
  }
  const layers = (model.layers || []).filter((l) => l && typeof l === 'object');
  const metrics = model.metrics || {};
  const acc = Number(metrics.test_accuracy);
  const epochs = Array.isArray(metrics.epochs) ? metrics.epochs : [];
  const cm = Array.isArray(metrics.confusion_matrix) ? metrics.confusion_matrix : null;
  const stats = document.createElement('dl');
  stats.className = 'stats';
  stats.innerHTML = (model.name ? `<div><dt>Model</dt><dd>${esc(model.name)}</dd></div>` : '') +
    '<div><dt>Test accuracy</dt>' +
    `<dd>${Number.isFinite(acc) ? (acc * 100).toFixed(2) + '%' : '\u2013'}</dd></div>` +
    `<div><dt>Parameters</dt><dd>${thousands(model.total_parameters || 0)}</dd></div>` +
    `<div><dt>Layers</dt><dd>${layers.length}</dd></div>` +
    `<div><dt>Epochs</dt><dd>${epochs.length || '\u2013'}</dd></div>` +
    '<div><dt>Weights</dt><dd><code>' +
    `${esc(String(model.weights_sha256 || '').slice(0, 12) || '\u2013')}</code></dd></div>`;

  const arch = document.createElement('div');
  arch.className = 'arch';
  arch.innerHTML =
    '<h3>Architecture</h3><div class="table-scroll"><table><thead><tr>' +
    '<th scope="col">Layer</th><th scope="col">Kind</th>' +
    '<th scope="col">Output shape ' +
    '<span class="unit">(channels \u00d7 height \u00d7 width)</span></th>' +
    '<th scope="col" class="num">Params</th></tr></thead><tbody>' +
    layers.map((l) => `<tr><th scope="row">${esc(l.name)}</th>` +
      `<td>${esc(kindLabel({ kind: l.kind, geo: l }))}</td>` +
      `<td>${esc((l.output_shape || []).join(' \u00d7 '))}</td>` +
      `<td class="num">${thousands(l.parameters || 0)}</td></tr>`).join('') +
    '</tbody><tfoot><tr><th scope="row" colspan="3">' +
    `Total (input ${esc((model.input_shape || []).join(' \u00d7 '))})</th>` +
    `<td class="num">${thousands(model.total_parameters || 0)}</td></tr></tfoot></table></div>`;

  const train = document.createElement('div');
  train.className = 'training';
  train.innerHTML = '<h3>Training</h3><p class="help">Per epoch (one pass over the training ' +
    'images): the loss (how wrong it is; lower is better) and the accuracy, on the training ' +
    'images and on held-out validation images.</p>';
  if (epochs.length) {
    train.append(
      chart('Loss', epochs, 'train_loss', 'val_loss', false),
      chart('Accuracy', epochs, 'train_accuracy', 'val_accuracy', true),
    );
  } else {
    train.insertAdjacentHTML('beforeend', '<p class="muted">No training history was reported.</p>');
  }

  const atlas = model.atlas === true;
  const conf = document.createElement('div');
  conf.className = 'conf';
  conf.innerHTML = '<h3>Where it goes wrong: the confusion matrix</h3>';
  if (cm) {
    const matrix = document.createElement('div');
    matrix.className = 'conf-matrix';
    matrix.append(confusion(cm, atlas));
    conf.append(matrix);
    if (atlas) {
      conf.classList.add('with-digits');
      conf.insertAdjacentHTML('beforeend', '<div class="conf-digits" ' +
        'data-testid="confusion-digits" aria-live="polite"></div>');
    } else {
      conf.insertAdjacentHTML('beforeend', '<p class="help">This model has no atlas, so the ' +
        'test digits behind each number are not at hand here.</p>');
    }
  } else {
    conf.insertAdjacentHTML('beforeend', '<p class="muted">No confusion matrix was reported.</p>');
  }
  const classes = document.createElement('div');
  classes.className = 'class-inputs';
  classes.dataset.testid = 'class-inputs';

  body.replaceChildren(stats, arch, train, conf, classes);
}
