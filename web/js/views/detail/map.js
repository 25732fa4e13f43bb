// A feature map enlarged: hover, tap or arrow keys read a cell and show its receptive field on the
// input; below it, a conv map's kernel, a pool map's mask over its input, or the map before.

import { paintCanvas } from '../../colormap.js';
import { esc, fmt } from '../../format.js';
import { receptiveField, geometry } from '../../receptive.js';
import { placeHighlight } from '../input.js';
import { kindLabel } from '../layers.js';
import { syncKernelEditor } from '../kernel-editor.js';
import { uis, clamp, touch, ABOUT, chScale, canvasFor, frame } from './frame.js';
import { editedKernel, renderKernel, renderEditor } from './kernel.js';
import { buildPool, drawPool } from './pool-overlay.js';
import { showArith } from './arithmetic-box.js';

// what the map before a one-in-one-out layer shows (after "The same channel one layer earlier")
const BEFORE = {
  relu: ': blue (negative) cells become 0, red ones pass.',
  avgpool2d: ', each window of it averaged into one cell.',
  batchnorm: ', before it was shifted and scaled.',
  tanh: ', before it was squashed.',
  sigmoid: ', before it was squashed.',
};

/** Put the cursor on cell [r, c] (null: none) and read it out, with its receptive field. */
export function setCursor(dialog, cell) {
  const ui = uis.get(dialog);
  ui.cursor = cell;
  const v = ui.view;
  const q = (s) => dialog.querySelector(s);
  const readout = q('.detail-map .readout');
  const rfText = q('.rf-text');
  let rf = null;
  if (!v || !cell) {
    readout.textContent = !v ? '' : touch() ? 'Tap the map to read a cell.'
      : 'Hover the map, or focus it and use the arrow keys, to read a cell.';
    rfText.textContent = 'Receptive field on the 28\u00d728 input: the pixels one cell looks at.';
  } else {
    const [r, c] = cell;
    readout.textContent = `row ${r}, col ${c}: ${fmt(v.data[v.offset + r * v.W + c])}`;
    if (v.model) {
      rf = receptiveField(v.model.layers, v.index, r, c, r, c, v.model.input_shape);
      rfText.textContent = `Receptive field: input rows ${rf.r0}\u2013${rf.r1}, ` +
        `cols ${rf.c0}\u2013${rf.c1} (${rf.r1 - rf.r0 + 1}\u00d7${rf.c1 - rf.c0 + 1} pixels), ` +
        'the part of the input this cell looks at.';
    } else {
      rfText.textContent = 'Receptive field unknown: the model description is not loaded.';
    }
  }
  const box = v && cell ? { r0: cell[0], c0: cell[1], r1: cell[0], c1: cell[1] } : null;
  placeHighlight(q('.cursor'), box, v && v.H, v && v.W);
  placeHighlight(q('.detail-rf .rf'), rf);
  if (v && v.kind === 'maxpool2d') drawPool(dialog, cell);
  showArith(dialog);
}

export function renderMap(dialog, ctx, channel) {
  const { q, ui, model, result, layers, li, layer, index, extra, changed } = ctx;
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
    sub: `${kindLabel({ kind: layer.kind, geo })} \u00b7 ${H}\u00d7${W} \u00b7 ` +
      `this map: min ${fmt(sc.min)}, max ${fmt(sc.max)}`,
    about: ABOUT[layer.kind] || '',
    pos: ch, count: C, what: 'channel', sc, input: result.input,
    note: `Colours span this map\u2019s own range${sc.diverging ? ' (0 is white)' : ''}; ` +
      'the small maps share one range for the whole layer, ' +
      'so the same colour can mean different values there.',
  });
  const map = q('.map-canvas');
  map.width = W;
  map.height = H;
  map.setAttribute('aria-label',
    `${layer.name} channel ${ch}, ${H} by ${W}; arrow keys move the cursor`);
  paintCanvas(map, v.data, offset, sc);

  const firstConv = model &&
    (model.layers.find((l) => l && l.kind === 'conv2d') || {}).name === layer.name;
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
    extra.innerHTML = `<h3>Before it (${esc(v.prev.name)})</h3>` +
      `<p class="muted">The same channel one layer earlier${BEFORE[layer.kind]}</p>`;
    const before = v.prev.data.data;
    paintCanvas(canvasFor(extra, 'before', w, h), before, ch * h * w,
      chScale(v.prev.kind, before, ch * h * w, h * w));
  } else {
    extra.replaceChildren();
  }
  setCursor(dialog, ui.cursor);
}
