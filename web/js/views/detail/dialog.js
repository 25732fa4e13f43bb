// Detail view: one feature map, or one vector layer, enlarged in a modal dialog. This module owns
// the dialog (its markup, keys, pointer and close); each kind of detail has its own module:
// map.js (with kernel.js and pool-overlay.js), vector.js (with dense-weights.js), and the
// interventions' edit-box.js (switch a map or unit off) and arithmetic-box.js; frame.js holds
// the parts they share.

import { toggleChannel } from '../../interventions.js';
import { uis, clamp, cellUnder } from './frame.js';
import { renderMap, setCursor } from './map.js';
import { renderVector, showUnit } from './vector.js';
import { fillWeights } from './dense-weights.js';
import { syncEdit } from './edit-box.js';

const KEYS = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

// (a tag broken across lines breaks between its attributes, which adds nothing to the DOM)
const TEMPLATE = `<form method="dialog" class="detail-head">
<div><h2 id="detail-title"></h2><p class="detail-sub"></p></div>
<div class="detail-nav"><button type="button" class="btn icon prev"
  aria-label="Previous channel">\u2039</button>
<button type="button" class="btn icon next" aria-label="Next channel">\u203a</button>
<button class="btn icon" value="close" aria-label="Close details">\u00d7</button></div></form>
<div class="detail-body"><p class="detail-about"></p>
<div class="detail-edit"><button type="button" class="btn off-toggle" aria-pressed="false"
  aria-keyshortcuts="x">Switch off</button>
<p class="help off-help"></p><p class="detail-answer"
  aria-live="polite"></p></div><figure class="detail-map">
<div class="stage big"><canvas class="map-canvas"
  tabindex="0"></canvas><div class="cursor" hidden></div></div>
<div class="vec-labels" aria-hidden="true"></div>
<div class="legend"><span class="lg-lo"></span><span class="lg-bar"
  aria-hidden="true"></span><span class="lg-hi"></span></div>
<p class="lg-note"></p>
<figcaption class="readout" aria-live="polite"></figcaption></figure>
<figure class="detail-rf"><div class="stage"><canvas class="input-canvas"></canvas><div class="rf"
  hidden></div></div>
<figcaption class="rf-text"></figcaption></figure>
<section class="detail-extra" aria-live="polite"></section><section class="filter-atlas"
  data-testid="filter-atlas" aria-labelledby="fa-title" hidden></section><section class="arith"
  data-testid="arithmetic" hidden></section></div>`;

export function setupDetail(dialog, { onClose, onChannel, loadWeights }) {
  dialog.innerHTML = TEMPLATE;
  const ui = {
    cursor: null, loadWeights, onChannel, opener: null, key: '', view: null, incoming: null,
    sortBy: 'weight',
  };
  uis.set(dialog, ui);
  const q = (s) => dialog.querySelector(s);
  dialog.addEventListener('close', () => {
    onClose();
    if (ui.opener && ui.opener.isConnected) ui.opener.focus();
  });
  dialog.addEventListener('click', (e) => e.target === dialog && dialog.close()); // backdrop
  // aria-disabled rather than disabled: a disabled button would drop focus to the page
  const step = (d) => (e) =>
    e.currentTarget.getAttribute('aria-disabled') !== 'true' && onChannel(d);
  q('.prev').addEventListener('click', step(-1));
  q('.next').addEventListener('click', step(1));
  const toggle = () => ui.view && ui.view.kind !== 'softmax' &&
    (toggleChannel(ui.view.layer.name, ui.view.ch), syncEdit(dialog));
  q('.off-toggle').addEventListener('click', toggle);
  const map = q('.map-canvas');
  const pointAt = (e) => {
    const v = ui.view;
    if (!v) return;
    const cell = cellUnder(map, e, map.height, map.width);
    if (!v.vector) return setCursor(dialog, cell);
    const unit = cell[0] * map.width + cell[1];
    if (unit >= v.n) return;
    if (e.type === 'pointerdown') onChannel(unit - v.ch);
    else showUnit(dialog, unit);
  };
  map.addEventListener('pointermove', pointAt);
  map.addEventListener('pointerdown', pointAt);
  map.addEventListener('pointerleave',
    () => ui.view && ui.view.vector && showUnit(dialog, ui.view.ch));
  // a keyboard user starts at the first cell; a click or tap leaves the hint until they point
  map.addEventListener('focus', () => map.matches(':focus-visible') && !ui.cursor && ui.view &&
    !ui.view.vector && setCursor(dialog, [0, 0]));
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
    const [ri, ci] = cellUnder(e.target, e, v.inH, v.inW);
    setCursor(dialog, [
      Math.min(v.H - 1, Math.floor((ri + v.geo.ph) / v.geo.sh)),
      Math.min(v.W - 1, Math.floor((ci + v.geo.pw) / v.geo.sw)),
    ]);
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
