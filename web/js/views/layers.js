// Layer explorer: every layer in model order as a panel; a layer's feature maps tiled on one
// canvas, vectors as a strip or compact grid, the last few as cells. Each panel is one tab stop:
// arrow keys move a cursor over the cells (and from map to map), the readout says the value,
// Enter or a click opens the detail view; hover and focus show the receptive field on the input.

import { range, scale, isDivergingKind, paintCanvas, gradient, cssColor } from '../colormap.js';
import { esc, fmt, percent, thousands } from '../format.js';
import { inkOn, rgbOf } from '../contrast.js';
import { receptiveField } from '../receptive.js';
import {
  tileLayout, columnsFor, tileOrigin, cellAt, paintTiles, moveCursor, placeBox,
} from '../tiles.js';

const ABOUT = {
  conv2d: 'Each filter slides over its input; ' +
    'a map lights up where the filter\u2019s pattern appears (red +, blue \u2212).',
  relu: 'ReLU keeps positive values and sets negatives to zero.',
  maxpool2d: 'Max-pooling keeps the largest value of each window, so the maps shrink.',
  avgpool2d: 'Average pooling keeps the mean of each window, so the maps shrink.',
  batchnorm: 'Batch norm shifts and scales each channel by statistics learnt in training.',
  tanh: 'Tanh squashes every value into \u22121 to 1.',
  sigmoid: 'Sigmoid squashes every value into 0 to 1.',
  flatten: 'Flatten unrolls all maps into one long vector.',
  dense: 'A dense layer: every unit weighs every value of the layer before.',
  dropout: 'Dropout is switched off when predicting, so values pass through unchanged.',
  softmax: 'Softmax turns the ten scores into probabilities that sum to 1.',
};

const times = (shape) => shape.join(' \u00d7 ');
// the body of a panel of maps or a vector: its canvas, a ring round the current map, the cursor
const TILES =
  '<canvas></canvas><div class="tile-ring" hidden></div><div class="tile-cursor" hidden></div>';

const KIND = {
  conv2d: 'Convolution', maxpool2d: 'Max-pool', avgpool2d: 'Average pool', batchnorm: 'Batch norm',
  relu: 'ReLU', tanh: 'Tanh', sigmoid: 'Sigmoid', dense: 'Dense', flatten: 'Flatten',
  dropout: 'Dropout', softmax: 'Softmax',
};

/** "Convolution 3x3, stride 1, same" from a model layer's geometry. */
function kindLabel({ kind, geo: g }) {
  const ks = g && g.kernel_size;
  if (ks == null) return KIND[kind] || kind;
  const k = Array.isArray(ks) ? ks.join('\u00d7') : `${ks}\u00d7${ks}`;
  return `${KIND[kind] || kind} ${k}${g.stride != null ? `, stride ${g.stride}` : ''}` +
    `${kind === 'conv2d' && g.padding ? `, ${g.padding}` : ''}`;
}

/** Layer list from the model description, else from a response. */
function specsOf(model, result) {
  if (model && Array.isArray(model.layers)) {
    return model.layers
      .filter((l) => l && typeof l === 'object')
      .map((l, index) => ({
        name: l.name, kind: l.kind, shape: l.output_shape, params: l.parameters, geo: l, index,
      }));
  }
  if (result && result.layers.length) {
    return result.layers.map((l, index) => ({
      name: l.name, kind: l.kind, shape: l.shape, params: null, geo: null, index,
    }));
  }
  return [];
}

function vectorGrid(n) {
  if (n <= 256) return [n, 1];
  const cols = Math.ceil(Math.sqrt(n * 4));
  return [cols, Math.ceil(n / cols)];
}

const GAP_PX = 4; // between maps, in CSS px
const mapPx = (H) => (H >= 28 ? 56 : H >= 14 ? 44 : 36); // a map's smallest width, CSS px

/** Maps tiled to fill `width` CSS px, each at least mapPx wide, ~GAP_PX apart. */
function mapLayout([C, H, W], width) {
  const fit = columnsFor(width, mapPx(H), GAP_PX);
  const cols = Math.min(C, fit);
  const gap = Math.max(1, Math.round((GAP_PX * fit * W) / Math.max(1, width))); // in map pixels
  return { ...tileLayout(C, H, W, cols, gap), share: cols < fit ? cols / fit : 1 };
}

function buildPanel(spec, width) {
  const sec = document.createElement('section');
  sec.className = 'layer empty';
  sec.setAttribute('data-testid', `layer-${spec.name}`);
  sec.dataset.kind = spec.kind;
  sec.dataset.name = spec.name;
  const hid = `layer-h-${spec.name}`;
  sec.setAttribute('aria-labelledby', hid);
  const params = spec.params != null
    ? `<span class="params">${thousands(spec.params)} params</span>` : '';
  sec.innerHTML =
    `<header class="layer-head"><h3 id="${esc(hid)}">${esc(spec.name)}</h3>` +
    `<span class="chip" data-kind="${esc(spec.kind)}">${esc(kindLabel(spec))}</span>` +
    `<span class="shape">${times(spec.shape)}</span>${params}</header>` +
    `<p class="layer-about">${ABOUT[spec.kind] || ''}</p>` +
    '<div class="legend" aria-hidden="true"><span class="lg-lo">\u2013</span>' +
    '<span class="lg-bar"></span><span class="lg-hi">\u2013</span></div>' +
    '<p class="lg-range">No data yet</p>';
  const maps = spec.shape.length === 3;
  const n = spec.shape.reduce((x, y) => x * y, 1);
  const [cols, rows] = vectorGrid(n);
  const kind = maps ? 'maps' : n <= 16 ? 'cells' : rows === 1 ? 'vector strip' : 'vector grid';
  const what = maps
    ? `${spec.shape[0]} maps of ${spec.shape[1]} by ${spec.shape[2]}; ` +
      'arrow keys move, Shift+arrows jump a map'
    : `${n} ${spec.kind === 'softmax' ? 'probabilities' : 'units'}; arrow keys move`;
  const q = (s) => sec.querySelector(s);
  sec.insertAdjacentHTML(
    'beforeend',
    `<div class="${kind}" tabindex="0" role="application" ` +
      `aria-label="${esc(`${spec.name}: ${what}, Enter opens`)}">` +
      (kind === 'cells'
        ? [...Array(n).keys()]
          .map((i) => `<span class="cell" data-i="${i}"><b>${i}</b><i>\u2013</i></span>`).join('')
        : TILES) +
      '</div><p class="readout" aria-live="polite" data-hint="Hover or focus ' +
      `${maps ? 'a map to read values' : 'a unit to read its value'}; ` +
      'click it or press Enter to open it, X switches it off."></p>' +
      (spec.kind === 'softmax' ? '' : '<button type="button" class="btn map-off" ' +
        `aria-pressed="false">Switch ${maps ? 'map' : 'unit'} 0 off</button>`),
  );
  const p = {
    spec, sec, n, cursor: 0, target: 0, off: [], layer: null,
    body: q(`.${kind.split(' ')[0]}`), readout: q('.readout'), toggle: q('.map-off'),
  };
  p.canvas = q('canvas');
  p.ring = q('.tile-ring');
  p.box = q('.tile-cursor');
  if (p.canvas) {
    sizeCanvas(p, maps ? mapLayout(spec.shape, width) : tileLayout(1, rows, cols, 1, 0));
  }
  return p;
}

function sizeCanvas(p, L) {
  p.L = L;
  p.canvas.width = L.width;
  p.canvas.height = L.height;
  p.img = null;
  if (p.spec.shape.length !== 3) {
    p.canvas.style.aspectRatio = L.H === 1 ? '' : `${L.width} / ${L.height}`;
    return;
  }
  p.canvas.style.width = L.share < 1 ? `${L.share * 100}%` : '';
  Object.assign(p.body.dataset, { cols: L.cols, rows: L.rows, gap: L.gap });
}

export { kindLabel };

const views = new WeakMap(); // container -> { sig, model, panels }

/** The cell { t, r, c } of flat index i in a panel's layout (maps: t is the channel). */
function cellOf(p, i) {
  const L = p.L || { H: 1, W: p.n };
  const per = L.H * L.W;
  return { t: Math.floor(i / per), r: Math.floor((i % per) / L.W), c: i % L.W };
}

export function setupLayers(container, hooks) {
  const view = { sig: '', model: null, panels: new Map() };
  views.set(container, view);
  const list = container.querySelector('.layer-list');
  const panelOf = (el) => {
    const sec = el && el.nodeType === 1 && el.closest('.layer');
    return sec ? view.panels.get(sec.dataset.name) : null;
  };

  /** The flat index of the cell under a pointer event, or -1. */
  function indexAt(p, e) {
    if (!p.canvas) {
      const cell = e.target.closest('.cell');
      return cell ? Number(cell.dataset.i) : -1;
    }
    if (e.target !== p.canvas) return -1;
    const rect = p.canvas.getBoundingClientRect();
    const x = ((e.clientX - rect.left) / rect.width) * p.L.width;
    const y = ((e.clientY - rect.top) / rect.height) * p.L.height;
    const at = cellAt(p.L, x, y);
    const i = at ? (at.t * p.L.H + at.r) * p.L.W + at.c : -1;
    return i < p.n ? i : -1;
  }

  /** Read cell i out and light up its map and its receptive field; `cursor`: the keyboard's. */
  function show(p, i, cursor) {
    const { t, r, c } = cellOf(p, i);
    const d = p.layer && p.layer.data.data;
    const value = d ? fmt(d[i]) : 'no data yet';
    const maps = p.spec.shape.length === 3;
    if (maps) p.readout.textContent = `channel ${t} \u00b7 row ${r}, col ${c}: ${value}`;
    else p.readout.textContent = `${p.spec.kind === 'softmax' ? `P(${i})` : `unit ${i}`}: ${value}`;
    p.target = maps ? t : i;
    labelToggle(p);
    if (p.canvas) {
      const [x0, y0] = tileOrigin(p.L, t);
      if (maps) placeBox(p.ring, p.L, y0, x0, y0 + p.L.H - 1, x0 + p.L.W - 1);
      if (cursor) placeBox(p.box, p.L, y0 + r, x0 + c);
      else p.box.hidden = true;
    } else {
      p.body.querySelectorAll('.cell')
        .forEach((el, k) => el.classList.toggle('current', cursor && k === i));
    }
    const m = view.model;
    if (!m) hooks.onHover(null);
    else if (maps) hooks.onHover(receptiveField(m.layers, p.spec.index, r, c, r, c, m.input_shape));
    else if (p.spec.kind === 'flatten') hooks.onHover(null); // flatten order is not in the contract
    else {
      const s = m.input_shape || [1, 28, 28];
      hooks.onHover({ r0: 0, c0: 0, r1: s[s.length - 2] - 1, c1: s[s.length - 1] - 1 });
    }
  }

  /** The detail view of cell i's map (a unit of a vector), refocusing the panel on close. */
  const open = (p, i) =>
    hooks.onOpen(p.spec.name, p.spec.shape.length === 3 ? cellOf(p, i).t : i, p.body);

  /** Back to the keyboard's cursor while the panel has focus, else to nothing lit. */
  function hide(p, blur = false) {
    if (!blur && p.body === document.activeElement) return show(p, p.cursor, true);
    if (p.canvas) p.ring.hidden = p.box.hidden = true;
    else p.body.querySelectorAll('.current').forEach((el) => el.classList.remove('current'));
    hooks.onHover(null);
  }

  list.addEventListener('mousemove', (e) => {
    const p = panelOf(e.target);
    const i = p ? indexAt(p, e) : -1;
    if (i >= 0) show(p, i, false);
    else if (p) hide(p);
  });
  list.addEventListener('mouseout', (e) => {
    const p = panelOf(e.target);
    if (p && !p.body.contains(e.relatedTarget)) hide(p);
  });
  list.addEventListener('click', (e) => {
    const p = panelOf(e.target);
    const i = p ? indexAt(p, e) : -1;
    if (i < 0) return;
    p.cursor = i;
    p.body.focus({ preventScroll: true });
    open(p, i);
  });
  list.addEventListener('focusin', (e) => {
    const p = panelOf(e.target);
    if (p && e.target === p.body) show(p, p.cursor, true);
  });
  list.addEventListener('focusout', (e) => {
    const p = panelOf(e.target);
    if (p && e.target === p.body) hide(p, true);
  });
  list.addEventListener('click', (e) => {
    const p = e.target.closest('.map-off') && panelOf(e.target);
    if (p) hooks.onToggle(p.spec.name, p.target);
  });
  list.addEventListener('keydown', (e) => {
    const p = panelOf(e.target);
    if (!p || e.target !== p.body || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      return open(p, p.cursor);
    }
    if ((e.key === 'x' || e.key === 'X') && p.toggle) {
      e.preventDefault();
      const { t } = cellOf(p, p.cursor);
      return hooks.onToggle(p.spec.name, p.spec.shape.length === 3 ? t : p.cursor);
    }
    let L = p.L;
    let at = cellOf(p, p.cursor);
    if (!p.canvas) {
      // cells wrap in a CSS grid: its columns are the ones in the first cell's row
      const cells = [...p.body.children];
      const cols = cells.filter((el) => el.offsetTop === cells[0].offsetTop).length;
      L = tileLayout(1, Math.ceil(p.n / cols), cols, 1, 0);
      at = { t: 0, r: Math.floor(p.cursor / cols), c: p.cursor % cols };
    }
    const next = moveCursor(L, at, e.key, e.shiftKey);
    if (!next) return;
    e.preventDefault();
    p.cursor = Math.min(p.n - 1, (next.t * L.H + next.r) * L.W + next.c);
    show(p, p.cursor, true);
  });

  // the maps are laid out for the list's width: re-tile (and repaint) when it changes
  new ResizeObserver(() => {
    const width = list.clientWidth;
    for (const p of view.panels.values()) {
      if (p.spec.shape.length !== 3 || !width) continue;
      const L = mapLayout(p.spec.shape, width);
      if (L.cols === p.L.cols && L.gap === p.L.gap && L.share === p.L.share) continue;
      sizeCanvas(p, L);
      draw(p);
      if (p.body === document.activeElement) show(p, p.cursor, true);
    }
  }).observe(list);
}

/** The scale a layer's values are drawn with (shared with the detail view). */
export function layerScale(kind, data) {
  const [min, max] = range(data);
  return scale(min, max, isDivergingKind(kind, min));
}

/** Draw every panel from the latest result. Costs one putImageData a panel: call it at most
 * once an animation frame. */
export function render(container, { model, result, ablated = {} }) {
  const list = container.querySelector('.layer-list');
  const view = views.get(container);
  const specs = specsOf(model, result);
  const sig = specs.map((s) => `${s.name}:${s.kind}:${s.shape}`).join('|');
  if (sig !== view.sig) {
    view.sig = sig;
    const width = list.clientWidth || 600; // (re-tiled once the list is laid out)
    view.panels = new Map(specs.map((spec) => [spec.name, buildPanel(spec, width)]));
    list.replaceChildren(...[...view.panels.values()].map((p) => p.sec));
    container.querySelector('.layers-empty').hidden = specs.length > 0;
    const flat = specs.length && !specs.some((sp) => sp.kind === 'conv2d');
    container.querySelector('.layers-note').textContent = flat
      ? 'This network has no convolution: it reads the 784 pixels as one long row of numbers, ' +
        'so there are no maps to tile and no kernels to edit; its units can still be switched off.'
      : '';
  }
  view.model = model;
  const byName = new Map(result ? result.layers.map((l) => [l.name, l]) : []);
  for (const p of view.panels.values()) {
    const layer = byName.get(p.spec.name);
    p.layer = layer && layer.data && layer.data.data.length === p.n ? layer : null;
    p.off = ablated[p.spec.name] || [];
    labelToggle(p);
    draw(p);
  }
}

function draw(p) {
  const { sec, spec, layer } = p;
  sec.classList.toggle('empty', !layer);
  if (!layer) return clearPanel(p);
  const data = layer.data.data;
  const sc = layerScale(spec.kind, data);
  sec.querySelector('.lg-bar').style.background = gradient(sc.map);
  sec.querySelector('.lg-lo').textContent = fmt(sc.lo);
  sec.querySelector('.lg-hi').textContent = fmt(sc.hi);
  sec.querySelector('.lg-range').textContent =
    `min ${fmt(sc.min)} \u00b7 max ${fmt(sc.max)}${sc.diverging ? ' \u00b7 0 is white' : ''}`;
  if (spec.shape.length === 3) {
    const ctx = p.canvas.getContext('2d');
    p.img = p.img || ctx.createImageData(p.L.width, p.L.height);
    paintTiles(p.img.data, data, p.L, sc);
    ctx.putImageData(p.img, 0, 0);
    for (const t of p.off) hatch(ctx, ...tileOrigin(p.L, t), p.L.W, p.L.H);
  } else if (p.canvas) {
    paintCanvas(p.canvas, data, 0, sc);
    const ctx = p.canvas.getContext('2d');
    for (const i of p.off) hatch(ctx, i % p.L.W, Math.floor(i / p.L.W), 1, 1);
  } else {
    p.body.querySelectorAll('.cell').forEach((cell, i) => {
      const v = data[i];
      const bg = cssColor(v, sc);
      cell.style.background = bg;
      cell.style.color = inkOn(rgbOf(bg)); // black or white, whichever contrasts more
      cell.querySelector('i').textContent = spec.kind === 'softmax' ? percent(v) : fmt(v);
      cell.title = `${i}: ${fmt(v)}`;
      cell.classList.toggle('off', p.off.includes(i));
    });
  }
}

/** A switched-off map (unit): dimmed grey with a diagonal stroke, whatever its colours were. */
function hatch(ctx, x, y, w, h) {
  ctx.fillStyle = 'rgba(72, 76, 88, 0.82)';
  ctx.fillRect(x, y, w, h);
  if (w < 4) return;
  ctx.fillStyle = '#fff';
  for (let k = 0; k < w; k++) ctx.fillRect(x + k, y + Math.floor((k * h) / w), 1, 1);
}

/** The panel's toggle names the map (unit) under the cursor and whether it is off. */
function labelToggle(p) {
  if (!p.toggle) return;
  const off = p.off.includes(p.target);
  p.toggle.textContent =
    `Switch ${p.spec.shape.length === 3 ? 'map' : 'unit'} ${p.target} ${off ? 'back on' : 'off'}`;
  p.toggle.setAttribute('aria-pressed', String(off));
}

function clearPanel({ sec, canvas, L, body }) {
  if (canvas) {
    // the empty maps stay in place as grey tiles
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = '#eef0f4';
    for (let t = 0; t < L.C; t++) ctx.fillRect(...tileOrigin(L, t), L.W, L.H);
  }
  body.querySelectorAll('.cell').forEach((cell) => {
    cell.style.background = '';
    cell.style.color = '';
    cell.querySelector('i').textContent = '\u2013';
  });
  sec.querySelector('.lg-bar').style.background = '';
  sec.querySelector('.lg-lo').textContent = sec.querySelector('.lg-hi').textContent = '\u2013';
  sec.querySelector('.lg-range').textContent = 'No data yet';
  const ro = sec.querySelector('.readout');
  if (body !== document.activeElement) ro.textContent = ro.dataset.hint;
}
