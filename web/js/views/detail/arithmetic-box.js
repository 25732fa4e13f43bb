// The arithmetic box under the map: the exact float16 sum behind the conv cell under the cursor
// or the selected dense unit, with any edits applied (../arithmetic.js lays it out).

import { geometry } from '../../receptive.js';
import { exactFor, editsFor } from '../../interventions.js';
import { convTerms, renderConv, renderDense } from '../arithmetic.js';
import { uis } from './frame.js';

/** The arithmetic of the cell under the cursor (conv) or the selected unit (dense). */
export async function showArith(dialog) {
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
    box.textContent =
      `The arithmetic needs the exact values, which could not be loaded: ${err.message}`;
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
    renderDense(box, {
      x: prev.data.data,
      row: w.weight.data.subarray(v.ch * I, (v.ch + 1) * I),
      bias,
      value: out.data[v.ch],
      off, from: prev.name, where: `${name} unit ${v.ch}`,
    });
    return;
  }
  const [, I, kh, kw] = w.weight.shape;
  const n = I * kh * kw;
  const swap = (edits.kernels || []).find((k) => k.layer === name && k.channel === v.ch);
  const kernel = swap ? swap.weight.flat(2) : w.weight.data.subarray(v.ch * n, (v.ch + 1) * n);
  const geo = geometry(v.model && v.model.layers[v.index], prev.data.shape)
    || { kh, kw, sh: 1, sw: 1, ph: 0, pw: 0 };
  const [r, c] = cell;
  renderConv(box, {
    terms: convTerms(prev.data, kernel, geo, r, c),
    bias,
    value: out.data[(v.ch * v.H + r) * v.W + c],
    off, from: prev.name, where: `${name} channel ${v.ch}, row ${r}, col ${c}`, kw,
  });
}
