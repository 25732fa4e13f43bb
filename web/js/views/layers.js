// Layer explorer: every layer in model order as a panel; feature maps as one small canvas per
// channel (focusable buttons that open the detail view), vectors as a strip or compact grid.

import { range, scale, isDivergingKind, paintCanvas, gradient, cssColor, isDark, fmt } from '../colormap.js';
import { receptiveField } from '../receptive.js';

const ABOUT = {
  conv2d: 'Each filter slides over its input; a map lights up where the filter\u2019s pattern appears (red +, blue \u2212).',
  relu: 'ReLU keeps positive values and sets negatives to zero.',
  maxpool2d: 'Max-pooling keeps the largest value of each window, so the maps shrink.',
  flatten: 'Flatten unrolls all maps into one long vector.',
  dense: 'A dense layer: every unit weighs every value of the layer before.',
  dropout: 'Dropout is switched off when predicting, so values pass through unchanged.',
  softmax: 'Softmax turns the ten scores into probabilities that sum to 1.',
};

const esc = (t) => String(t).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const times = (shape) => shape.join(' \u00d7 ');

const KIND = { conv2d: 'Convolution', maxpool2d: 'Max-pool', relu: 'ReLU', dense: 'Dense', flatten: 'Flatten', dropout: 'Dropout', softmax: 'Softmax' };

/** "Convolution 3x3, stride 1, same" from a model layer's geometry. */
function kindLabel({ kind, geo: g }) {
  const ks = g && g.kernel_size;
  if (ks == null) return KIND[kind] || kind;
  const k = Array.isArray(ks) ? ks.join('\u00d7') : `${ks}\u00d7${ks}`;
  return `${KIND[kind] || kind} ${k}${g.stride != null ? `, stride ${g.stride}` : ''}${kind === 'conv2d' && g.padding ? `, ${g.padding}` : ''}`;
}

/** Layer list from the model description, else from a response. */
function specsOf(model, result) {
  if (model && Array.isArray(model.layers)) {
    return model.layers
      .filter((l) => l && typeof l === 'object')
      .map((l, index) => ({ name: l.name, kind: l.kind, shape: l.output_shape, params: l.parameters, geo: l, index }));
  }
  if (result && result.layers.length) {
    return result.layers.map((l, index) => ({ name: l.name, kind: l.kind, shape: l.shape, params: null, geo: null, index }));
  }
  return [];
}

function vectorGrid(n) {
  if (n <= 256) return [n, 1];
  const cols = Math.ceil(Math.sqrt(n * 4));
  return [cols, Math.ceil(n / cols)];
}

function buildPanel(spec) {
  const sec = document.createElement('section');
  sec.className = 'layer empty';
  sec.setAttribute('data-testid', `layer-${spec.name}`);
  sec.dataset.kind = spec.kind;
  sec.dataset.name = spec.name;
  const hid = `layer-h-${spec.name}`;
  sec.setAttribute('aria-labelledby', hid);
  const params = spec.params != null ? `<span class="params">${Number(spec.params).toLocaleString('en')} params</span>` : '';
  sec.innerHTML =
    `<header class="layer-head"><h3 id="${esc(hid)}">${esc(spec.name)}</h3>` +
    `<span class="chip" data-kind="${esc(spec.kind)}">${esc(kindLabel(spec))}</span>` +
    `<span class="shape">${times(spec.shape)}</span>${params}</header>` +
    `<p class="layer-about">${ABOUT[spec.kind] || ''}</p>` +
    '<div class="legend" aria-hidden="true"><span class="lg-lo">\u2013</span><span class="lg-bar"></span>' +
    '<span class="lg-hi">\u2013</span></div><p class="lg-range">No data yet</p>';
  const body = document.createElement('div');
  if (spec.shape.length === 3) {
    const [C, H, W] = spec.shape;
    body.className = 'maps';
    body.style.setProperty('--map', `${H >= 28 ? 56 : H >= 14 ? 44 : 36}px`);
    for (let c = 0; c < C; c++) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'map';
      b.dataset.ch = String(c);
      b.tabIndex = c ? -1 : 0; // one tab stop per layer; arrow keys move between maps
      b.setAttribute('aria-label', `${spec.name} channel ${c}: open details`);
      const cv = document.createElement('canvas');
      cv.width = W;
      cv.height = H;
      b.append(cv);
      body.append(b);
    }
  } else {
    const n = spec.shape[0];
    if (n <= 16) {
      body.className = 'cells';
      for (let i = 0; i < n; i++) {
        const s = document.createElement('span');
        s.className = 'cell';
        s.dataset.i = String(i);
        s.innerHTML = `<b>${i}</b><i>\u2013</i>`;
        body.append(s);
      }
    } else {
      const [cols, rows] = vectorGrid(n);
      body.className = rows === 1 ? 'vector strip' : 'vector grid';
      const cv = document.createElement('canvas');
      cv.width = cols;
      cv.height = rows;
      cv.style.aspectRatio = rows === 1 ? '' : `${cols} / ${rows}`;
      body.append(cv);
    }
  }
  sec.append(body);
  const readout = document.createElement('p');
  readout.className = 'readout';
  readout.dataset.hint = spec.shape.length === 3 ? 'Hover a map to read values; click it (or Enter; arrows move) to open it.' : 'Hover a cell to read its value.';
  sec.append(readout);
  return sec;
}

export { kindLabel, esc };

const views = new WeakMap(); // container -> { sig, model, data }

export function setupLayers(container, hooks) {
  const view = { sig: '', model: null, data: new Map() };
  views.set(container, view);
  const list = container.querySelector('.layer-list');

  list.addEventListener('click', (e) => {
    const b = e.target.closest('button.map');
    if (!b) return;
    b.parentElement.querySelectorAll('[tabindex="0"]').forEach((m) => (m.tabIndex = -1));
    b.tabIndex = 0;
    hooks.onOpen(b.closest('.layer').dataset.name, Number(b.dataset.ch), b);
  });

  list.addEventListener('keydown', (e) => {
    const b = e.target.closest('button.map');
    if (!b) return;
    const maps = [...b.parentElement.children];
    const i = maps.indexOf(b);
    const cols = maps.filter((m) => m.offsetTop === maps[0].offsetTop).length;
    const j = { ArrowLeft: i - 1, ArrowRight: i + 1, ArrowUp: i - cols, ArrowDown: i + cols, Home: 0, End: maps.length - 1 }[e.key];
    if (j === undefined) return;
    e.preventDefault();
    const next = maps[Math.max(0, Math.min(maps.length - 1, j))];
    b.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  });

  const whole = () => {
    const s = (view.model && view.model.input_shape) || [1, 28, 28];
    return { r0: 0, c0: 0, r1: s[s.length - 2] - 1, c1: s[s.length - 1] - 1 };
  };
  list.addEventListener('mousemove', (e) => {
    const panel = e.target.closest('.layer');
    const info = panel && view.data.get(panel.dataset.name);
    if (!info) return;
    const el = e.target;
    const r = el.getBoundingClientRect();
    const readout = panel.querySelector('.readout');
    const { spec, layer } = info;
    const d = layer.data.data;
    if (el.tagName === 'CANVAS' && el.closest('button.map')) {
      const ch = Number(el.parentElement.dataset.ch);
      const [, H, W] = layer.data.shape;
      const row = Math.min(H - 1, Math.floor(((e.clientY - r.top) / r.height) * H));
      const col = Math.min(W - 1, Math.floor(((e.clientX - r.left) / r.width) * W));
      readout.textContent = `channel ${ch} \u00b7 row ${row}, col ${col}: ${fmt(d[ch * H * W + row * W + col])}`;
      hooks.onHover(view.model ? receptiveField(view.model.layers, spec.index, row, col, row, col, view.model.input_shape) : null);
    } else if (el.tagName === 'CANVAS') {
      const col = Math.min(el.width - 1, Math.floor(((e.clientX - r.left) / r.width) * el.width));
      const row = Math.min(el.height - 1, Math.floor(((e.clientY - r.top) / r.height) * el.height));
      const i = row * el.width + col;
      if (i < d.length) readout.textContent = `unit ${i}: ${fmt(d[i])}`;
      hooks.onHover(spec.kind === 'flatten' ? null : whole()); // flatten order is not in the contract
    } else if (el.closest('.cell')) {
      const i = Number(el.closest('.cell').dataset.i);
      readout.textContent = `${spec.kind === 'softmax' ? 'P(' + i + ')' : 'unit ' + i}: ${fmt(d[i])}`;
      hooks.onHover(whole());
    }
  });
  const hoverable = (el) => !!el && el.nodeType === 1 && (el.tagName === 'CANVAS' || !!el.closest('.cell'));
  list.addEventListener('mouseout', (e) => {
    if (hoverable(e.target) && !hoverable(e.relatedTarget)) hooks.onHover(null);
  });
}

/** The scale a layer's values are drawn with (shared with the detail view). */
export function layerScale(kind, data) {
  const [min, max] = range(data);
  return scale(min, max, isDivergingKind(kind, min));
}

export function render(container, { model, result }) {
  const list = container.querySelector('.layer-list');
  const view = views.get(container);
  const specs = specsOf(model, result);
  const sig = specs.map((s) => `${s.name}:${s.kind}:${s.shape}`).join('|');
  if (sig !== view.sig) {
    view.sig = sig;
    list.replaceChildren(...specs.map(buildPanel));
    container.querySelector('.layers-empty').hidden = specs.length > 0;
  }
  view.model = model;
  const byName = new Map(result ? result.layers.map((l) => [l.name, l]) : []);
  const data = new Map();
  for (const spec of specs) {
    const panel = list.querySelector(`[data-testid="layer-${CSS.escape(spec.name)}"]`);
    const layer = byName.get(spec.name);
    const ok = !!(layer && layer.data);
    panel.classList.toggle('empty', !ok);
    if (!ok) {
      clearPanel(panel);
      continue;
    }
    data.set(spec.name, { spec, layer });
    const arr = layer.data;
    const sc = layerScale(spec.kind, arr.data);
    panel.querySelector('.lg-bar').style.background = gradient(sc.map);
    panel.querySelector('.lg-lo').textContent = fmt(sc.lo);
    panel.querySelector('.lg-hi').textContent = fmt(sc.hi);
    panel.querySelector('.lg-range').textContent = `min ${fmt(sc.min)} \u00b7 max ${fmt(sc.max)}${sc.diverging ? ' \u00b7 0 is white' : ''}`;
    if (arr.shape.length === 3) {
      const [, H, W] = arr.shape;
      panel.querySelectorAll('button.map canvas').forEach((cv, c) => {
        if (c * H * W < arr.data.length) paintCanvas(cv, arr.data, c * H * W, sc);
      });
    } else {
      const cv = panel.querySelector('canvas');
      if (cv) paintCanvas(cv, arr.data, 0, sc);
      panel.querySelectorAll('.cell').forEach((cell, i) => {
        const v = arr.data[i];
        cell.style.background = cssColor(v, sc);
        cell.classList.toggle('light', isDark(v, sc));
        cell.querySelector('i').textContent = spec.kind === 'softmax' ? `${Math.round(v * 100)}%` : fmt(v);
        cell.title = `${i}: ${fmt(v)}`;
      });
    }
  }
  view.data = data;
}

function clearPanel(panel) {
  panel.querySelectorAll('canvas').forEach((cv) => cv.getContext('2d').clearRect(0, 0, cv.width, cv.height));
  panel.querySelectorAll('.cell').forEach((cell) => {
    cell.style.background = '';
    cell.classList.remove('light');
    cell.querySelector('i').textContent = '\u2013';
  });
  panel.querySelector('.lg-bar').style.background = '';
  panel.querySelector('.lg-lo').textContent = panel.querySelector('.lg-hi').textContent = '\u2013';
  panel.querySelector('.lg-range').textContent = 'No data yet';
  const ro = panel.querySelector('.readout');
  ro.textContent = ro.dataset.hint;
}
