// Detail view: one feature map, or one vector layer, enlarged in a modal dialog.
// Maps: hover, tap or arrow keys read a cell and show its receptive field on the input; conv maps
// show their kernel, pool maps the pooling mask over the pool's input, ReLU maps the map before.
// Vectors (flatten, dense, softmax, ...): the whole vector with one unit selected (arrow keys move),
// its value, and for a dense unit its strongest incoming weights.
// Interventions: any map or unit can be switched off (button or X), the first conv layer's kernels
// edited, and a conv cell's or dense unit's arithmetic is laid out from the float16 values.

import { scale, range, isDivergingKind, paintCanvas, gradient, cssColor } from '../../colormap.js';
import { esc, fmt, percent } from '../../format.js';
import { receptiveField, poolWindow, geometry } from '../../receptive.js';
import { inkOn, rgbOf } from '../../contrast.js';
import { paintGray, placeHighlight } from '../input.js';
import { kindLabel } from '../layers.js';
import { isOff, toggleChannel, setKernel, exactFor, editsFor } from '../../interventions.js';
import { renderKernelEditor, syncKernelEditor } from '../kernel-editor.js';
import { convTerms, renderConv, renderDense } from '../arithmetic.js';

const uis = new WeakMap(); // dialog -> { cursor, loadWeights, onChannel, opener, key, view }
const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
const KEYS = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
const touch = () => window.matchMedia('(hover: none)').matches;
const TOP_WEIGHTS = 8;

const ABOUT = {
  conv2d: 'Where this filter finds its pattern in the layer below: red where it matches, blue where the input looks like its opposite.',
  relu: 'The map before it with every negative value set to 0: what passes on to the next layer.',
  maxpool2d: 'Smaller than its input: each cell keeps the largest value of one window.',
  avgpool2d: 'Smaller than its input: each cell is the mean of one window, so nothing is picked out.',
  batchnorm: 'Each channel shifted and scaled by statistics learnt in training, so values sit around 0 (blue below, red above).',
  tanh: 'The layer before squashed into \u22121 to 1: large values saturate, small ones pass almost unchanged.',
  sigmoid: 'The layer before squashed into 0 to 1.',
  flatten: 'All the maps of the layer before, laid out in one long row of numbers for the dense layers.',
  dense: 'Each unit weighs every value of the layer before and adds them up, plus a bias.',
  logits: 'The raw scores (logits): one per digit, before softmax turns them into probabilities.',
  relu1d: 'The dense layer\u2019s units with negatives set to 0.',
  dropout: 'Dropout only acts while training; here the values pass through unchanged.',
  softmax: 'The probability of each digit: softmax of the raw scores, all ten add up to 1.',
};

// what the map before a one-input-one-output layer shows (after "The same channel one layer earlier")
const BEFORE = {
  relu: ': blue (negative) cells become 0, red ones pass.',
  avgpool2d: ', each window of it averaged into one cell.',
  batchnorm: ', before it was shifted and scaled.',
  tanh: ', before it was squashed.',
  sigmoid: ', before it was squashed.',
};

/** The detail view stretches each map to its own range. */
function chScale(kind, data, off, n) {
  const [min, max] = range(data, off, n);
  return scale(min, max, isDivergingKind(kind, min));
}

function cellAt(el, e, H, W) {
  const r = el.getBoundingClientRect();
  return [
    clamp(Math.floor(((e.clientY - r.top) / r.height) * H), 0, H - 1),
    clamp(Math.floor(((e.clientX - r.left) / r.width) * W), 0, W - 1),
  ];
}

function canvasFor(parent, cls, W, H) {
  const cv = document.createElement('canvas');
  cv.className = cls;
  cv.width = W;
  cv.height = H;
  parent.append(cv);
  return cv;
}

/** A coloured cell with readable text, for kernels and small vectors. */
function colourCell(tag, value, sc, text) {
  const el = document.createElement(tag);
  const bg = cssColor(value, sc);
  el.style.background = bg;
  el.style.color = inkOn(rgbOf(bg));
  el.textContent = text;
  return el;
}

/** Columns and rows a vector of n units is drawn in: a strip up to 16, then a grid. */
function vectorGrid(n) {
  if (n <= 16) return [n, 1];
  const cols = n <= 256 ? 16 : Math.ceil(Math.sqrt(n));
  return [cols, Math.ceil(n / cols)];
}

const TEMPLATE = `<form method="dialog" class="detail-head">
<div><h2 id="detail-title"></h2><p class="detail-sub"></p></div>
<div class="detail-nav"><button type="button" class="btn icon prev" aria-label="Previous channel">\u2039</button>
<button type="button" class="btn icon next" aria-label="Next channel">\u203a</button>
<button class="btn icon" value="close" aria-label="Close details">\u00d7</button></div></form>
<div class="detail-body"><p class="detail-about"></p>
<div class="detail-edit"><button type="button" class="btn off-toggle" aria-pressed="false" aria-keyshortcuts="x">Switch off</button>
<p class="help off-help"></p><p class="detail-answer" aria-live="polite"></p></div><figure class="detail-map">
<div class="stage big"><canvas class="map-canvas" tabindex="0"></canvas><div class="cursor" hidden></div></div>
<div class="vec-labels" aria-hidden="true"></div>
<div class="legend"><span class="lg-lo"></span><span class="lg-bar" aria-hidden="true"></span><span class="lg-hi"></span></div>
<p class="lg-note"></p>
<figcaption class="readout" aria-live="polite"></figcaption></figure>
<figure class="detail-rf"><div class="stage"><canvas class="input-canvas"></canvas><div class="rf" hidden></div></div>
<figcaption class="rf-text"></figcaption></figure>
<section class="detail-extra" aria-live="polite"></section><section class="arith" data-testid="arithmetic" hidden></section></div>`;

export function setupDetail(dialog, { onClose, onChannel, loadWeights }) {
  dialog.innerHTML = TEMPLATE;
  const ui = { cursor: null, loadWeights, onChannel, opener: null, key: '', view: null, incoming: null, sortBy: 'weight' };
  uis.set(dialog, ui);
  const q = (s) => dialog.querySelector(s);
  dialog.addEventListener('close', () => {
    onClose();
    if (ui.opener && ui.opener.isConnected) ui.opener.focus();
  });
  dialog.addEventListener('click', (e) => e.target === dialog && dialog.close()); // backdrop
  // aria-disabled rather than disabled: a disabled button would drop focus to the page
  const step = (d) => (e) => e.currentTarget.getAttribute('aria-disabled') !== 'true' && onChannel(d);
  q('.prev').addEventListener('click', step(-1));
  q('.next').addEventListener('click', step(1));
  const toggle = () => ui.view && ui.view.kind !== 'softmax' && (toggleChannel(ui.view.layer.name, ui.view.ch), syncEdit(dialog));
  q('.off-toggle').addEventListener('click', toggle);
  const map = q('.map-canvas');
  const pointAt = (e) => {
    const v = ui.view;
    if (!v) return;
    const cell = cellAt(map, e, map.height, map.width);
    if (!v.vector) return setCursor(dialog, cell);
    const unit = cell[0] * map.width + cell[1];
    if (unit >= v.n) return;
    if (e.type === 'pointerdown') onChannel(unit - v.ch);
    else showUnit(dialog, unit);
  };
  map.addEventListener('pointermove', pointAt);
  map.addEventListener('pointerdown', pointAt);
  map.addEventListener('pointerleave', () => ui.view && ui.view.vector && showUnit(dialog, ui.view.ch));
  // a keyboard user starts at the first cell; a click or tap leaves the hint until they point
  map.addEventListener('focus', () => map.matches(':focus-visible') && !ui.cursor && ui.view && !ui.view.vector && setCursor(dialog, [0, 0]));
  map.addEventListener('keydown', (e) => {
    if (e.key.toLowerCase() === 'x' && !e.ctrlKey && !e.metaKey && !e.altKey) return toggle();
    const d = KEYS[e.key];
    const v = ui.view;
    if (!d || !v) return;
    e.preventDefault();
    if (v.vector) return onChannel(d[0] * map.width + d[1]);
    const [r, c] = ui.cursor || [0, 0];
    setCursor(dialog, [clamp(r + d[0], 0, map.height - 1), clamp(c + d[1], 0, map.width - 1)]);
  });
  // pointing at the pool overlay selects the pooled cell whose window covers that input cell
  const poolPoint = (e) => {
    const v = ui.view;
    if (!v || !v.geo || !e.target.matches('[data-testid="pool-overlay"]')) return;
    const [ri, ci] = cellAt(e.target, e, v.inH, v.inW);
    setCursor(dialog, [Math.min(v.H - 1, Math.floor((ri + v.geo.ph) / v.geo.sh)), Math.min(v.W - 1, Math.floor((ci + v.geo.pw) / v.geo.sw))]);
  };
  q('.detail-extra').addEventListener('pointermove', poolPoint);
  q('.detail-extra').addEventListener('click', (e) => {
    const b = e.target.closest('[data-sort]');
    if (!b || !ui.incoming) return;
    ui.sortBy = b.dataset.sort;
    fillWeights(dialog);
  });
  q('.detail-extra').addEventListener('pointerdown', poolPoint);
}

/** Open the dialog, remembering what to refocus on close. */
export function open(dialog, opener) {
  const ui = uis.get(dialog);
  ui.opener = opener || document.activeElement;
  ui.cursor = null;
  if (!dialog.open) dialog.showModal();
  dialog.querySelector('.map-canvas').focus({ preventScroll: true });
}

function setCursor(dialog, cell) {
  const ui = uis.get(dialog);
  ui.cursor = cell;
  const v = ui.view;
  const q = (s) => dialog.querySelector(s);
  const readout = q('.detail-map .readout');
  const rfText = q('.rf-text');
  let rf = null;
  if (!v || !cell) {
    readout.textContent = !v ? '' : touch() ? 'Tap the map to read a cell.' : 'Hover the map, or focus it and use the arrow keys, to read a cell.';
    rfText.textContent = 'Receptive field on the 28\u00d728 input: the pixels one cell looks at.';
  } else {
    const [r, c] = cell;
    readout.textContent = `row ${r}, col ${c}: ${fmt(v.data[v.offset + r * v.W + c])}`;
    if (v.model) {
      rf = receptiveField(v.model.layers, v.index, r, c, r, c, v.model.input_shape);
      rfText.textContent = `Receptive field: input rows ${rf.r0}\u2013${rf.r1}, cols ${rf.c0}\u2013${rf.c1} (${rf.r1 - rf.r0 + 1}\u00d7${rf.c1 - rf.c0 + 1} pixels), the part of the input this cell looks at.`;
    } else {
      rfText.textContent = 'Receptive field unknown: the model description is not loaded.';
    }
  }
  placeHighlight(q('.cursor'), v && cell ? { r0: cell[0], c0: cell[1], r1: cell[0], c1: cell[1] } : null, v && v.H, v && v.W);
  placeHighlight(q('.detail-rf .rf'), rf);
  if (v && v.kind === 'maxpool2d') drawPool(dialog, cell);
  showArith(dialog);
}

/** Render the open map or vector from the latest state; closes the dialog when detail is null. */
export function render(dialog, { model, result, detail, kernels }) {
  const q = (s) => dialog.querySelector(s);
  const ui = uis.get(dialog);
  ui.view = null;
  Object.assign(ui, { result, kernels });
  if (!detail) {
    if (dialog.open) dialog.close();
    return;
  }
  const key = `${detail.name}/${detail.channel}`;
  const changed = key !== ui.key;
  ui.key = key;
  if (changed) ui.cursor = null;
  const layers = result ? result.layers : [];
  const li = layers.findIndex((l) => l.name === detail.name);
  const layer = layers[li];
  const extra = q('.detail-extra');
  const dims = layer && layer.data ? layer.data.shape.length : 0;
  const index = model ? model.layers.findIndex((l) => l && l.name === detail.name) : -1;
  const ctx = { q, ui, model, result, layers, li, layer, index, extra, changed };
  q('.stage.big').style.aspectRatio = '';
  q('.vec-labels').replaceChildren();
  if (dims === 3) return renderMap(dialog, ctx, detail.channel), syncEdit(dialog);
  if (dims === 1) return renderVector(dialog, ctx, detail.channel), syncEdit(dialog);
  q('#detail-title').textContent = `${detail.name} \u00b7 ${detail.channel}`;
  q('.detail-sub').textContent = 'No activations to show: draw a digit or upload an image.';
  for (const s of ['.detail-about', '.lg-note', '.lg-lo', '.lg-hi']) q(s).textContent = '';
  extra.replaceChildren();
  syncEdit(dialog);
  return setCursor(dialog, null);
}

/** Title, prev/next, legend and the input thumbnail: the parts maps and vectors share. */
function frame(q, { title, sub, about, pos, count, what, sc, note, input }) {
  q('#detail-title').textContent = title;
  q('.detail-sub').textContent = sub;
  q('.detail-about').textContent = about;
  for (const [cls, off, word] of [['.prev', pos === 0, 'Previous'], ['.next', pos === count - 1, 'Next']]) {
    q(cls).setAttribute('aria-disabled', String(off));
    q(cls).setAttribute('aria-label', `${word} ${what}`);
  }
  q('.detail-map .lg-bar').style.background = gradient(sc.map);
  q('.detail-map .lg-lo').textContent = fmt(sc.lo);
  q('.detail-map .lg-hi').textContent = fmt(sc.hi);
  q('.lg-note').textContent = note;
  if (input) paintGray(q('.detail-rf .input-canvas'), input);
}

function renderMap(dialog, { q, ui, model, result, layers, li, layer, index, extra, changed }, channel) {
  const geo = index >= 0 ? model.layers[index] : null;
  const [C, H, W] = layer.data.shape;
  const ch = clamp(channel, 0, C - 1);
  const offset = ch * H * W;
  const sc = chScale(layer.kind, layer.data.data, offset, H * W);
  const prev = layers[li - 1];
  const v = (ui.view = {
    kind: layer.kind, H, W, ch, offset, data: layer.data.data, layer, model, index,
    geo: layer.kind === 'maxpool2d' ? geometry(geo) : null,
    prev: prev && prev.data && prev.data.shape.length === 3 ? prev : null,
  });
  frame(q, {
    title: `${layer.name} \u00b7 channel ${ch} of ${C}`,
    sub: `${kindLabel({ kind: layer.kind, geo })} \u00b7 ${H}\u00d7${W} \u00b7 this map: min ${fmt(sc.min)}, max ${fmt(sc.max)}`,
    about: ABOUT[layer.kind] || '',
    pos: ch, count: C, what: 'channel', sc, input: result.input,
    note: `Colours span this map\u2019s own range${sc.diverging ? ' (0 is white)' : ''}; the small maps share one range for the whole layer, so the same colour can mean different values there.`,
  });
  const map = q('.map-canvas');
  map.width = W;
  map.height = H;
  map.setAttribute('aria-label', `${layer.name} channel ${ch}, ${H} by ${W}; arrow keys move the cursor`);
  paintCanvas(map, v.data, offset, sc);

  const firstConv = model && (model.layers.find((l) => l && l.kind === 'conv2d') || {}).name === layer.name;
  const editor = extra.querySelector('[data-testid="kernel-editor"]');
  if (firstConv && editor && !changed) {
    syncKernelEditor(editor, editedKernel(ui.kernels, layer.name, ch));
  } else if (firstConv) {
    if (changed || !extra.querySelector('.kernel')) renderEditor(dialog, layer.name, ch);
  } else if (layer.kind === 'conv2d') {
    if (changed || !extra.querySelector('.kernel')) renderKernel(dialog, layer.name, ch);
  } else if (layer.kind === 'maxpool2d') {
    buildPool(dialog, extra);
  } else if (BEFORE[layer.kind] && v.prev && v.prev.data.shape[0] === C) {
    const [, h, w] = v.prev.data.shape;
    extra.innerHTML = `<h3>Before it (${esc(v.prev.name)})</h3><p class="muted">The same channel one layer earlier${BEFORE[layer.kind]}</p>`;
    paintCanvas(canvasFor(extra, 'before', w, h), v.prev.data.data, ch * h * w, chScale(v.prev.kind, v.prev.data.data, ch * h * w, h * w));
  } else {
    extra.replaceChildren();
  }
  setCursor(dialog, ui.cursor);
}

// ---- vectors: flatten, dense, ReLU after dense, dropout, softmax -------------------------------

/** Which words a vector layer gets: "digit" for ten outputs at the end, else "unit". */
function vectorWords(layers, li, model) {
  const layer = layers[li];
  const n = layer.data.shape[0];
  const next = layers[li + 1];
  const logits = layer.kind === 'dense' && (!next || next.kind === 'softmax');
  const digits = n === 10 && (logits || layer.kind === 'softmax' || !next);
  const aboutKey = logits ? 'logits' : layer.kind === 'relu' ? 'relu1d' : layer.kind;
  const spec = model && model.layers.find((l) => l && l.name === layer.name);
  return { n, logits, digits, about: ABOUT[aboutKey] || '', kind: kindLabel({ kind: layer.kind, geo: spec || null }) };
}

function renderVector(dialog, { q, ui, model, result, layers, li, layer, extra, changed }, channel) {
  const words = vectorWords(layers, li, model);
  const { n } = words;
  const u = clamp(channel, 0, n - 1);
  const data = layer.data.data;
  const sc = chScale(layer.kind, data, 0, n);
  const [cols, rows] = vectorGrid(n);
  const prev = layers[li - 1];
  const v = (ui.view = { vector: true, kind: layer.kind, n, ch: u, data, layer, words, H: rows, W: cols });
  const unitName = (i) => (words.digits ? `digit ${i}` : `unit ${i}`);
  frame(q, {
    title: `${layer.name} \u00b7 ${words.logits ? 'raw score (logit) for ' : ''}${unitName(u)}${words.digits ? '' : ` of ${n}`}`,
    sub: `${words.kind}${words.logits ? ' \u00b7 raw scores (logits)' : ''} \u00b7 ${n} values \u00b7 min ${fmt(sc.min)}, max ${fmt(sc.max)}`,
    about: words.about,
    pos: u, count: n, what: words.digits ? 'digit' : 'unit', sc, input: result.input,
    note: `One square per ${words.digits ? 'digit' : 'unit'}${rows > 1 ? `, ${cols} to a row` : ''}, coloured over the whole layer\u2019s range${sc.diverging ? ' (0 is white)' : ''}, as in the layer\u2019s own panel.`,
  });
  const map = q('.map-canvas');
  map.width = cols;
  map.height = rows;
  q('.stage.big').style.aspectRatio = `${cols} / ${rows}`;
  map.setAttribute('aria-label', `${layer.name}: ${n} values; ${unitName(u)} selected; arrow keys move between them`);
  paintCanvas(map, data, 0, sc);
  if (n <= 16) {
    const labels = q('.vec-labels');
    labels.style.gridTemplateColumns = `repeat(${n}, 1fr)`;
    labels.replaceChildren(...Array.from({ length: n }, (_, i) => Object.assign(document.createElement('span'), { textContent: i })));
  }
  placeHighlight(q('.cursor'), { r0: Math.floor(u / cols), c0: u % cols, r1: Math.floor(u / cols), c1: u % cols }, rows, cols);
  showUnit(dialog, u);
  const input = result.input && result.input.shape;
  placeHighlight(q('.detail-rf .rf'), input ? { r0: 0, c0: 0, r1: input[0] - 1, c1: input[1] - 1 } : null);
  q('.rf-text').textContent = 'Receptive field: all 28\u00d728 input pixels. From the flatten on, every unit sees the whole image.';

  if (layer.kind === 'dense') {
    if (changed || !extra.querySelector('.weights')) renderIncoming(dialog, layer.name, u, prev, words.logits ? `The score for ${u}` : `Unit ${u}`);
  } else if (layer.kind === 'softmax') {
    const score = prev && prev.data && prev.data.shape.length === 1 ? prev.data.data[u] : null;
    extra.innerHTML = `<h3>Probability of ${u}</h3><p class="big-value">${percent(data[u])}</p>` +
      `<p class="muted">Softmax: e raised to this digit\u2019s raw score${score != null ? ` (${esc(fmt(score))} from ${esc(prev.name)})` : ''}, divided by the sum of that over all ten digits.</p>`;
  } else if (prev && prev.data && prev.data.shape.length === 1 && prev.data.shape[0] === n) {
    extra.innerHTML = `<h3>${esc(unitName(u))}</h3><p class="big-value">${esc(fmt(data[u]))}</p>` +
      `<p class="muted">Before this layer (${esc(prev.name)}): ${esc(fmt(prev.data.data[u]))}.</p>`;
  } else {
    extra.innerHTML = `<h3>${esc(unitName(u))}</h3><p class="big-value">${esc(fmt(data[u]))}</p>` +
      `<p class="muted">${layer.kind === 'flatten' ? 'One value of the maps before, unrolled; the dense layer after weighs all of them.' : ''}</p>`;
  }
  showArith(dialog);
}

/** The readout under a vector: the selected (or pointed-at) unit and its value. */
function showUnit(dialog, i) {
  const v = uis.get(dialog).view;
  const val = v.data[i];
  const own = i === v.ch ? '' : ` (${touch() ? 'tap' : 'click'} to select)`;
  let text = `unit ${i}: ${fmt(val)}`;
  if (v.kind === 'softmax') text = `P(${i}) = ${percent(val)}`;
  else if (v.words.logits) text = `raw score for ${i}: ${fmt(val)}`;
  dialog.querySelector('.detail-map .readout').textContent = text + own;
}

/** A dense unit's strongest incoming weights, with what each contributes for this drawing. */
async function renderIncoming(dialog, name, u, prev, label) {
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
  extra.innerHTML = `${head}<p class="muted">Out of ${I} weights from ${from}, the ${TOP_WEIGHTS} largest. Positive ones (red) raise the unit when their input is high, negative ones (blue) lower it.</p>` +
    (x ? '<div class="sort" role="group" aria-label="Largest by"><button type="button" class="btn" data-sort="weight">size of weight</button><button type="button" class="btn" data-sort="now">effect on this drawing</button></div>' : '') +
    '<table class="weights"></table>';
  fillWeights(dialog);
  extra.insertAdjacentHTML('beforeend', `<p class="muted sum">Bias ${esc(fmt(bias))}.${x ? ` Bias + all ${I} weight \u00d7 value products = ${esc(fmt(sum))}, the unit\u2019s value (up to rounding in transit).` : ''}</p>` +
    `<h4>All ${I} incoming weights (blue \u2212, red +)</h4>`);
  const [cols, rows] = vectorGrid(I);
  const cv = canvasFor(extra, 'weights-map', cols, rows);
  cv.style.aspectRatio = `${cols} / ${rows}`;
  cv.setAttribute('role', 'img');
  cv.setAttribute('aria-label', `The ${I} incoming weights of unit ${u}, ${cols} to a row`);
  paintCanvas(cv, row, 0, ui.incoming.wsc);
}

/** The top-weights table, ordered by |weight| or by |weight x value| for this drawing. */
function fillWeights(dialog) {
  const ui = uis.get(dialog);
  const { row, x, from, wsc } = ui.incoming;
  const byNow = ui.sortBy === 'now' && x;
  const size = byNow ? (j) => Math.abs(row[j] * x[j]) : (j) => Math.abs(row[j]);
  const order = Array.from(row.keys()).sort((a, b) => size(b) - size(a)).slice(0, TOP_WEIGHTS);
  dialog.querySelectorAll('[data-sort]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.sort === (byNow ? 'now' : 'weight'))));
  const table = dialog.querySelector('table.weights');
  table.innerHTML = `<thead><tr><th scope="col">${from} unit</th><th scope="col">weight</th>${x ? '<th scope="col">its value now</th><th scope="col">weight \u00d7 value</th>' : ''}</tr></thead>`;
  const body = document.createElement('tbody');
  for (const j of order) {
    const tr = document.createElement('tr');
    tr.innerHTML = `<th scope="row">${j}</th>`;
    tr.append(colourCell('td', row[j], wsc, fmt(row[j])));
    if (x) tr.insertAdjacentHTML('beforeend', `<td>${esc(fmt(x[j]))}</td><td>${esc(fmt(row[j] * x[j]))}</td>`);
    body.append(tr);
  }
  table.append(body);
}

// ---- conv: the filter's kernel ------------------------------------------------------------------

/** A layer's weights for the open view; null (and a message) on failure or if the view moved on. */
async function weightsFor(dialog, name, head, cls) {
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

async function renderKernel(dialog, name, ch) {
  const extra = dialog.querySelector('.detail-extra');
  const head = `<h3>Filter ${ch}\u2019s kernel</h3>`;
  const w = await weightsFor(dialog, name, head, 'kernel');
  if (!w) return;
  if (!w.weight || w.weight.shape.length !== 4) {
    extra.innerHTML = `${head}<p class="muted kernel">This layer reports no 4-D kernel.</p>`;
    return;
  }
  const [, I, kh, kw] = w.weight.shape;
  const n = kh * kw;
  const base = ch * I * n;
  const all = w.weight.data;
  const sum = new Float32Array(n);
  let m = 0;
  for (let i = 0; i < I * n; i++) {
    sum[i % n] += all[base + i];
    m = Math.max(m, Math.abs(all[base + i]));
  }
  const bias = w.bias ? w.bias.data[ch] : null;
  const ms = Math.max(...Array.from(sum, Math.abs)) || 1;
  extra.innerHTML = `${head}<p class="muted">${I === 1 ? `The ${kh}\u00d7${kw} weights it slides over the input` : `Summed over its ${I} input channels`}${bias != null ? `; bias ${esc(fmt(bias))}` : ''}. Red weights reward ink, blue ones penalise it.</p>`;
  const grid = document.createElement('div');
  grid.className = 'kernel-grid kernel';
  grid.style.gridTemplateColumns = `repeat(${kw}, 1fr)`;
  const sc = scale(-ms, ms, true);
  for (const val of sum) grid.append(colourCell('span', val, sc, fmt(val)));
  extra.append(grid);
  if (I > 1) {
    extra.insertAdjacentHTML('beforeend', `<h4>Per input channel (${I} kernels, colour scale \u00b1${fmt(m)})</h4><div class="kernel-many"></div>`);
    const many = extra.lastChild;
    for (let i = 0; i < I; i++) paintCanvas(canvasFor(many, '', kw, kh), all, base + i * n, scale(-m, m, true));
  }
}

// ---- pool: the mask over the pool's input ------------------------------------------------------

function buildPool(dialog, extra) {
  const v = uis.get(dialog).view;
  let cv = extra.querySelector('[data-testid="pool-overlay"]');
  if (!cv) {
    extra.innerHTML = `<h3>Which input won each window</h3><p class="muted">The pool\u2019s input map. Outlined cells won their window (the pooling mask: the cell each window kept; all-zero windows have no real winner); the rest is dimmed. ${touch() ? 'Tap' : 'Hover'} a cell to see its window.</p>`;
    cv = canvasFor(extra, 'pool-overlay', 1, 1);
    cv.dataset.testid = 'pool-overlay';
    cv.setAttribute('role', 'img');
  }
  const mask = v.layer.mask;
  v.inH = mask ? mask.shape[1] : v.prev ? v.prev.data.shape[1] : v.H * 2;
  v.inW = mask ? mask.shape[2] : v.prev ? v.prev.data.shape[2] : v.W * 2;
  v.geo = v.geo || { kh: v.inH / v.H, kw: v.inW / v.W, sh: v.inH / v.H, sw: v.inW / v.W, ph: 0, pw: 0 };
  v.S = Math.max(6, Math.floor(308 / v.inW));
  cv.width = v.inW * v.S;
  cv.height = v.inH * v.S;
  cv.setAttribute('aria-label', `Pooling mask of ${v.layer.name} channel ${v.ch} over its ${v.inH} by ${v.inW} input`);
  v.src = document.createElement('canvas'); // the pool's input channel at native size
  v.src.width = v.inW;
  v.src.height = v.inH;
  const n = v.inH * v.inW;
  if (v.prev) paintCanvas(v.src, v.prev.data.data, v.ch * n, chScale(v.prev.kind, v.prev.data.data, v.ch * n, n));
}

function drawPool(dialog, cell) {
  const v = uis.get(dialog).view;
  const cv = dialog.querySelector('[data-testid="pool-overlay"]');
  if (!cv || !v.src) return;
  const { inH, inW, S, geo } = v;
  const ctx = cv.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, cv.width, cv.height);
  ctx.drawImage(v.src, 0, 0, cv.width, cv.height);
  const mask = v.layer.mask && v.layer.mask.data;
  const src = v.prev && v.prev.data.data;
  const base = v.ch * inH * inW;
  ctx.lineWidth = Math.max(1, S / 10);
  ctx.strokeStyle = '#fff';
  ctx.fillStyle = 'rgba(0,0,0,0.55)';
  for (let r = 0; r < inH; r++) {
    for (let c = 0; c < inW; c++) {
      const i = base + r * inW + c;
      // winners outlined; a winner of an all-zero window won nothing and is dimmed like the rest
      if (mask && mask[i] && !(src && src[i] === 0)) {
        ctx.strokeRect(c * S + 1.5, r * S + 1.5, S - 3, S - 3);
      } else {
        ctx.fillRect(c * S, r * S, S, S);
      }
    }
  }
  ctx.strokeStyle = 'rgba(255,255,255,0.22)'; // window grid
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let r = 0; r <= inH; r += geo.sh) ctx.rect(0, r * S + 0.5, cv.width, 0);
  for (let c = 0; c <= inW; c += geo.sw) ctx.rect(c * S + 0.5, 0, 0, cv.height);
  ctx.stroke();
  if (cell) {
    const w = poolWindow(v.model ? v.model.layers[v.index] : null, cell[0], cell[1], inH, inW, v.H);
    ctx.strokeStyle = '#ffb000';
    ctx.lineWidth = 3;
    ctx.strokeRect(w.c0 * S + 1.5, w.r0 * S + 1.5, (w.c1 - w.c0 + 1) * S - 3, (w.r1 - w.r0 + 1) * S - 3);
  }
}

// ---- interventions: switching off, the kernel editor, the arithmetic ----------------------------

/** Filter ch's edited weights, flat, from an `edits.kernels`-like state; null when not edited. */
function editedKernel(kernels, name, ch) {
  const k = kernels && kernels[name] && kernels[name][ch];
  return k ? k.flat(2) : null;
}

/** The switch-off button and the answer now, beside the unedited one while edits are on. */
function syncEdit(dialog) {
  const ui = uis.get(dialog);
  const v = ui.view;
  const q = (s) => dialog.querySelector(s);
  const box = q('.detail-edit');
  box.hidden = !v || v.kind === 'softmax';
  const off = !box.hidden && isOff(v.layer.name, v.ch);
  q('.stage.big').classList.toggle('off', off && !v.vector);
  if (box.hidden) return;
  const what = v.vector ? 'unit' : 'map';
  const btn = q('.off-toggle');
  btn.setAttribute('aria-pressed', String(off));
  btn.textContent = `Switch this ${what} off`;
  q('.off-help').textContent = `${off ? 'Switched off: it passes on only zeros' : touch() ? 'Switch it off and watch' : `Or press X on the ${what}`}; every layer after it and the answer update.`;
  const r = ui.result;
  q('.detail-answer').textContent = r
    ? `Answer now: ${r.label} (${percent(r.probabilities[r.label])})${r.baseline ? `; without your edits: ${r.baseline.label} (${percent(r.baseline.probabilities[r.baseline.label])})` : ''}`
    : '';
}

async function renderEditor(dialog, name, ch) {
  const extra = dialog.querySelector('.detail-extra');
  const ui = uis.get(dialog);
  const w = await weightsFor(dialog, name, `<h3>Filter ${ch}\u2019s kernel</h3>`, 'kernel');
  if (!w) return;
  const [, I, kh, kw] = w.weight.shape; // (out, in, kh, kw)
  const n = I * kh * kw;
  const box = document.createElement('div');
  box.dataset.testid = 'kernel-editor';
  extra.replaceChildren(box);
  renderKernelEditor(box, {
    name, ch, shape: [I, kh, kw],
    trained: w.weight.data.slice(ch * n, (ch + 1) * n),
    current: editedKernel(ui.kernels, name, ch),
    bias: w.bias ? w.bias.data[ch] : 0,
    onChange(flat) {
      const nest = flat && Array.from({ length: I }, (_, i) => Array.from({ length: kh }, (_, r) => flat.slice((i * kh + r) * kw, (i * kh + r + 1) * kw)));
      setKernel(name, ch, nest);
    },
  });
}

/** The arithmetic of the cell under the cursor (conv) or the selected unit (dense). */
async function showArith(dialog) {
  const ui = uis.get(dialog);
  const v = ui.view;
  const box = dialog.querySelector('.arith');
  const cell = v && !v.vector ? ui.cursor : null;
  const sig = v && `${ui.key}|${cell}`;
  if (!v || !(v.kind === 'dense' || (v.kind === 'conv2d' && cell))) {
    ui.arith = null;
    box.hidden = true;
    return;
  }
  if (ui.arith && ui.arith.sig === sig && ui.arith.result === ui.result) return;
  const settle = ui.arith && ui.arith.sig === sig; // the same cell, a newer result: edits in flight
  const mine = (ui.arith = { sig, result: ui.result });
  if (settle) await new Promise((ok) => setTimeout(ok, 250));
  const name = v.layer.name;
  let ex, w;
  try {
    if (ui.arith !== mine) return;
    [ex, w] = await Promise.all([exactFor(ui.result), ui.loadWeights(name)]);
  } catch (err) {
    if (ui.arith !== mine) return;
    box.hidden = false;
    box.textContent = `The arithmetic needs the exact values, which could not be loaded: ${err.message}`;
    return;
  }
  if (ui.arith !== mine) return;
  const li = ex.layers.findIndex((l) => l.name === name);
  const out = ex.layers[li].data;
  const prev = li > 0 ? ex.layers[li - 1] : { name: 'the input', data: ex.input };
  const edits = editsFor(ui.result) || {};
  const off = (edits.ablate || []).some((a) => a.layer === name && a.channels.includes(v.ch));
  const bias = w.bias ? w.bias.data[v.ch] : 0;
  if (v.vector) {
    const I = w.weight.shape[1];
    renderDense(box, { x: prev.data.data, row: w.weight.data.subarray(v.ch * I, (v.ch + 1) * I), bias, value: out.data[v.ch], off, from: prev.name, where: `${name} unit ${v.ch}` });
    return;
  }
  const [, I, kh, kw] = w.weight.shape;
  const n = I * kh * kw;
  const swap = (edits.kernels || []).find((k) => k.layer === name && k.channel === v.ch);
  const kernel = swap ? swap.weight.flat(2) : w.weight.data.subarray(v.ch * n, (v.ch + 1) * n);
  const geo = geometry(v.model && v.model.layers[v.index], prev.data.shape) || { kh, kw, sh: 1, sw: 1, ph: 0, pw: 0 };
  const [r, c] = cell;
  renderConv(box, {
    terms: convTerms(prev.data, kernel, geo, r, c), bias, value: out.data[(v.ch * v.H + r) * v.W + c],
    off, from: prev.name, where: `${name} channel ${v.ch}, row ${r}, col ${c}`, kw,
  });
}
