// A conv filter's kernel: its weights summed over the input channels and per channel; for the
// first conv layer, the kernel editor instead, whose changes go to the network.

import { scale, paintCanvas } from '../../colormap.js';
import { esc, fmt } from '../../format.js';
import { setKernel } from '../../interventions.js';
import { renderKernelEditor } from '../kernel-editor.js';
import { uis, canvasFor, colourCell, weightsFor } from './frame.js';

/** Filter ch's edited weights, flat, from an `edits.kernels`-like state; null when not edited. */
export function editedKernel(kernels, name, ch) {
  const k = kernels && kernels[name] && kernels[name][ch];
  return k ? k.flat(2) : null;
}

/** The kernel of filter ch, read-only. */
export async function renderKernel(dialog, name, ch) {
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
  const what = I === 1 ? `The ${kh}\u00d7${kw} weights it slides over the input`
    : `Summed over its ${I} input channels`;
  extra.innerHTML = `${head}<p class="muted">${what}` +
    `${bias != null ? `; bias ${esc(fmt(bias))}` : ''}. ` +
    'Red weights reward ink, blue ones penalise it.</p>';
  const grid = document.createElement('div');
  grid.className = 'kernel-grid kernel';
  grid.style.gridTemplateColumns = `repeat(${kw}, 1fr)`;
  const sc = scale(-ms, ms, true);
  for (const val of sum) grid.append(colourCell('span', val, sc, fmt(val)));
  extra.append(grid);
  if (I > 1) {
    extra.insertAdjacentHTML('beforeend',
      `<h4>Per input channel (${I} kernels, colour scale \u00b1${fmt(m)})</h4>` +
      '<div class="kernel-many"></div>');
    const many = extra.lastChild;
    for (let i = 0; i < I; i++) {
      paintCanvas(canvasFor(many, '', kw, kh), all, base + i * n, scale(-m, m, true));
    }
  }
}

/** The kernel of filter ch in the kernel editor (the first conv layer). */
export async function renderEditor(dialog, name, ch) {
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
      const row = (i, r) => flat.slice((i * kh + r) * kw, (i * kh + r + 1) * kw);
      const channel = (i) => Array.from({ length: kh }, (_, r) => row(i, r));
      const nest = flat && Array.from({ length: I }, (_, i) => channel(i));
      setKernel(name, ch, nest);
    },
  });
}
