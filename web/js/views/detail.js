// Detail view: one feature map enlarged in a modal dialog. Hover (or arrow keys) reads a cell and
// shows its receptive field on the input; conv maps show their kernel, pool maps the pooling
// mask over the pool's input, ReLU maps the map before the ReLU.

import { scale, range, isDivergingKind, paintCanvas, gradient, cssColor, isDark, fmt } from '../colormap.js';
import { receptiveField, poolWindow, geometry } from '../receptive.js';
import { paintGray, placeHighlight } from './input.js';
import { kindLabel, esc } from './layers.js';

const uis = new WeakMap(); // dialog -> { cursor, loadWeights, opener, key, view }
const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
const KEYS = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

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

const TEMPLATE = `<form method="dialog" class="detail-head">
<div><h2 id="detail-title"></h2><p class="detail-sub"></p></div>
<div class="detail-nav"><button type="button" class="btn icon prev" aria-label="Previous channel">\u2039</button>
<button type="button" class="btn icon next" aria-label="Next channel">\u203a</button>
<button class="btn icon" value="close" aria-label="Close details">\u00d7</button></div></form>
<div class="detail-body"><figure class="detail-map">
<div class="stage big"><canvas class="map-canvas" tabindex="0"></canvas><div class="cursor" hidden></div></div>
<div class="legend" aria-hidden="true"><span class="lg-lo"></span><span class="lg-bar"></span><span class="lg-hi"></span></div>
<figcaption class="readout" aria-live="polite"></figcaption></figure>
<figure class="detail-rf"><div class="stage"><canvas class="input-canvas"></canvas><div class="rf" hidden></div></div>
<figcaption class="rf-text"></figcaption></figure>
<section class="detail-extra" aria-live="polite"></section></div>`;

export function setupDetail(dialog, { onClose, onChannel, loadWeights }) {
  dialog.innerHTML = TEMPLATE;
  const ui = { cursor: null, loadWeights, opener: null, key: '', view: null };
  uis.set(dialog, ui);
  const q = (s) => dialog.querySelector(s);
  dialog.addEventListener('close', () => {
    onClose();
    if (ui.opener && ui.opener.isConnected) ui.opener.focus();
  });
  dialog.addEventListener('click', (e) => e.target === dialog && dialog.close()); // backdrop
  q('.prev').addEventListener('click', () => onChannel(-1));
  q('.next').addEventListener('click', () => onChannel(1));
  const map = q('.map-canvas');
  map.addEventListener('mousemove', (e) => setCursor(dialog, cellAt(map, e, map.height, map.width)));
  map.addEventListener('focus', () => ui.cursor || setCursor(dialog, [0, 0]));
  map.addEventListener('keydown', (e) => {
    const d = KEYS[e.key];
    if (!d) return;
    e.preventDefault();
    const [r, c] = ui.cursor || [0, 0];
    setCursor(dialog, [clamp(r + d[0], 0, map.height - 1), clamp(c + d[1], 0, map.width - 1)]);
  });
  // hovering the pool overlay selects the pooled cell whose window covers that input cell
  q('.detail-extra').addEventListener('mousemove', (e) => {
    const v = uis.get(dialog).view;
    if (!v || !v.geo || !e.target.matches('[data-testid="pool-overlay"]')) return;
    const [ri, ci] = cellAt(e.target, e, v.inH, v.inW);
    setCursor(dialog, [Math.min(v.H - 1, Math.floor((ri + v.geo.ph) / v.geo.sh)), Math.min(v.W - 1, Math.floor((ci + v.geo.pw) / v.geo.sw))]);
  });
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
    readout.textContent = v ? 'Hover the map, or focus it and use the arrow keys, to read a cell.' : '';
    rfText.textContent = 'Receptive field on the 28\u00d728 input';
  } else {
    const [r, c] = cell;
    readout.textContent = `row ${r}, col ${c}: ${fmt(v.data[v.offset + r * v.W + c])}`;
    if (v.model) {
      rf = receptiveField(v.model.layers, v.index, r, c, r, c, v.model.input_shape);
      rfText.textContent = `Receptive field: input rows ${rf.r0}\u2013${rf.r1}, cols ${rf.c0}\u2013${rf.c1} (${rf.r1 - rf.r0 + 1}\u00d7${rf.c1 - rf.c0 + 1} pixels)`;
    } else {
      rfText.textContent = 'Receptive field unknown: the model description is not loaded.';
    }
  }
  placeHighlight(q('.cursor'), v && cell ? { r0: cell[0], c0: cell[1], r1: cell[0], c1: cell[1] } : null, v && v.H, v && v.W);
  placeHighlight(q('.detail-rf .rf'), rf);
  if (v && v.kind === 'maxpool2d') drawPool(dialog, cell);
}

/** Render the open map from the latest state; closes the dialog when detail is null. */
export function render(dialog, { model, result, detail }) {
  const q = (s) => dialog.querySelector(s);
  const ui = uis.get(dialog);
  ui.view = null;
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
  if (!layer || !layer.data || layer.data.shape.length !== 3) {
    q('#detail-title').textContent = `${detail.name} \u00b7 channel ${detail.channel}`;
    q('.detail-sub').textContent = 'No activations to show: draw a digit or upload an image.';
    extra.replaceChildren();
    return setCursor(dialog, null);
  }
  const index = model ? model.layers.findIndex((l) => l && l.name === detail.name) : -1;
  const geo = index >= 0 ? model.layers[index] : null;
  const [C, H, W] = layer.data.shape;
  const ch = clamp(detail.channel, 0, C - 1);
  const offset = ch * H * W;
  const sc = chScale(layer.kind, layer.data.data, offset, H * W);
  const prev = layers[li - 1];
  const v = (ui.view = {
    kind: layer.kind, H, W, ch, offset, data: layer.data.data, layer, model, index,
    geo: layer.kind === 'maxpool2d' ? geometry(geo) : null,
    prev: prev && prev.data && prev.data.shape.length === 3 ? prev : null,
  });

  q('#detail-title').textContent = `${layer.name} \u00b7 channel ${ch} of ${C}`;
  q('.detail-sub').textContent = `${kindLabel({ kind: layer.kind, geo })} \u00b7 ${H}\u00d7${W} \u00b7 this map: min ${fmt(sc.min)}, max ${fmt(sc.max)}`;
  q('.prev').disabled = ch === 0;
  q('.next').disabled = ch === C - 1;
  const map = q('.map-canvas');
  map.width = W;
  map.height = H;
  map.setAttribute('aria-label', `${layer.name} channel ${ch}, ${H} by ${W}; arrow keys move the cursor`);
  paintCanvas(map, v.data, offset, sc);
  q('.detail-map .lg-bar').style.background = gradient(sc.map);
  q('.detail-map .lg-lo').textContent = fmt(sc.lo);
  q('.detail-map .lg-hi').textContent = fmt(sc.hi);
  if (result.input) paintGray(q('.detail-rf .input-canvas'), result.input);

  if (layer.kind === 'conv2d') {
    if (changed || !extra.querySelector('.kernel')) renderKernel(dialog, layer.name, ch);
  } else if (layer.kind === 'maxpool2d') {
    buildPool(dialog, extra);
  } else if (layer.kind === 'relu' && v.prev) {
    const [, h, w] = v.prev.data.shape;
    extra.innerHTML = `<h3>Before the ReLU (${esc(v.prev.name)})</h3><p class="muted">The same channel before ReLU: blue (negative) cells become 0, red ones pass.</p>`;
    paintCanvas(canvasFor(extra, 'before', w, h), v.prev.data.data, ch * h * w, chScale(v.prev.kind, v.prev.data.data, ch * h * w, h * w));
  } else {
    extra.replaceChildren();
  }
  setCursor(dialog, ui.cursor);
}

// ---- conv: the filter's kernel ------------------------------------------------------------------

async function renderKernel(dialog, name, ch) {
  const extra = dialog.querySelector('.detail-extra');
  const ui = uis.get(dialog);
  const key = ui.key;
  const head = `<h3>Filter ${ch}\u2019s kernel</h3>`;
  extra.innerHTML = `${head}<p class="muted kernel">Loading weights\u2026</p>`;
  let w;
  try {
    w = await ui.loadWeights(name);
  } catch (err) {
    if (ui.key !== key) return;
    extra.innerHTML = `${head}<p class="error-text kernel" role="status"></p>`;
    extra.querySelector('p').textContent = `Could not load the weights of ${name}: ${err.message}`;
    return;
  }
  if (ui.key !== key) return; // the user moved on meanwhile
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
  for (const val of sum) {
    const s = document.createElement('span');
    s.style.background = cssColor(val, sc);
    if (isDark(val, sc)) s.className = 'light';
    s.textContent = fmt(val);
    grid.append(s);
  }
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
    extra.innerHTML = '<h3>Which input won each window</h3><p class="muted">The pool\u2019s input map. Outlined cells won their window (the pooling mask; all-zero windows have no real winner); the rest is dimmed. Hover a pooled cell to see its window.</p>';
    cv = canvasFor(extra, 'pool-overlay', 1, 1);
    cv.dataset.testid = 'pool-overlay';
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
