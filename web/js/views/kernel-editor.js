// The kernel editor (first conv layer, detail view): a filter's weights as numbers to type, step
// with the arrow keys or drag up and down; presets and Reset. Every change goes to onChange,
// which sends it to the network, so the maps follow the numbers.

import { scale, cssColor, gradient } from '../colormap.js';
import { fmt } from '../format.js';
import { inkOn, rgbOf } from '../contrast.js';

const PRESETS = {
  identity: [0, 0, 0, 0, 1, 0, 0, 0, 0],
  'vertical edge': [-1, 0, 1, -1, 0, 1, -1, 0, 1],
  'horizontal edge': [-1, -1, -1, 0, 0, 0, 1, 1, 1],
  blur: Array(9).fill(0.11),
};
const PER_PX = 0.01; // weight change per pixel dragged
const round = (v) => Math.round(v * 1000) / 1000;
const editors = new WeakMap(); // box -> { vals, trained, onChange }

/**
 * Build the editor in box. shape [C_in, kh, kw]; trained and current are flat weights (current
 * null when the filter is not edited); onChange(flat | null) with null meaning "trained again".
 */
export function renderKernelEditor(box, { name, ch, shape, trained, current, bias, onChange }) {
  const [I, kh, kw] = shape;
  const ed = { vals: Float64Array.from(current || trained), trained, onChange, kh, kw };
  editors.set(box, ed);
  const presets = I === 1 && kh === 3 && kw === 3;
  const presetButtons = presets ? Object.keys(PRESETS)
    .map((p) => `<button type="button" class="btn" data-preset="${p}">${p}</button>`).join('') : '';
  box.innerHTML = `<h3>Edit filter ${ch}\u2019s kernel</h3><p class="muted">Change the weights ` +
    `and every map below ${name} follows: drag a number up or down, type one, or use the ` +
    'arrow keys. Red weights reward ink, blue ones penalise it.</p>' +
    '<div class="kernel-grid kernel ke-grid" role="group" ' +
    `aria-label="Kernel weights of ${name} filter ${ch}"></div>` +
    '<div class="legend"><span class="lg-lo"></span>' +
    '<span class="lg-bar" aria-hidden="true"></span><span class="lg-hi"></span></div>' +
    `<div class="ke-tools" role="group" aria-label="Kernel presets">${presetButtons}` +
    '<button type="button" class="btn" data-preset="">Reset</button></div>' +
    '<p class="muted ke-state" aria-live="polite"></p>' +
    `<p class="muted">Bias ${fmt(bias)} (kept).</p>`;
  const grid = box.querySelector('.ke-grid');
  grid.style.gridTemplateColumns = `repeat(${kw}, 1fr)`;
  ed.vals.forEach((_, i) => {
    const inp = document.createElement('input');
    inp.type = 'number';
    inp.step = '0.05';
    inp.dataset.i = String(i);
    const k = i % (kh * kw);
    inp.setAttribute('aria-label', `${I > 1 ? `input ${Math.floor(i / (kh * kw))}, ` : ''}` +
      `row ${Math.floor(k / kw) + 1}, column ${(k % kw) + 1}`);
    grid.append(inp);
  });
  const emit = () => {
    const same = ed.vals.every((v, i) => v === ed.trained[i]);
    paint(box, null);
    ed.onChange(same ? null : Array.from(ed.vals));
  };
  grid.addEventListener('input', (e) => {
    const v = Number(e.target.value);
    const bad = e.target.value.trim() === '' || !Number.isFinite(v) || Math.abs(v) > 1000;
    e.target.setAttribute('aria-invalid', String(bad));
    if (bad) return;
    ed.vals[Number(e.target.dataset.i)] = v;
    emit();
  });
  grid.addEventListener('pointerdown', (e) => {
    const inp = e.target.closest('input');
    if (!inp || e.button > 0) return;
    const y0 = e.clientY;
    const i = Number(inp.dataset.i);
    const v0 = ed.vals[i];
    let moved = false;
    inp.setPointerCapture(e.pointerId);
    const move = (ev) => {
      if (!moved && Math.abs(ev.clientY - y0) < 4) return;
      moved = true;
      ed.vals[i] = round(v0 + (y0 - ev.clientY) * PER_PX);
      emit();
    };
    const up = () => inp.removeEventListener('pointermove', move);
    inp.addEventListener('pointermove', move);
    inp.addEventListener('pointerup', up, { once: true });
    inp.addEventListener('pointercancel', up, { once: true });
  });
  box.querySelector('.ke-tools').addEventListener('click', (e) => {
    const b = e.target.closest('[data-preset]');
    if (!b) return;
    const p = PRESETS[b.dataset.preset];
    ed.vals = Float64Array.from(p || ed.trained);
    emit();
  });
  paint(box, null);
}

/** Show new weights (after a Reset elsewhere) without rebuilding, so focus and typing stay. */
export function syncKernelEditor(box, current) {
  const ed = editors.get(box);
  if (ed) paint(box, (ed.vals = Float64Array.from(current || ed.trained)));
}

function paint(box, fresh) {
  const ed = editors.get(box);
  const m = Math.max(...Array.from(ed.vals, Math.abs)) || 1;
  const sc = scale(-m, m, true);
  box.querySelectorAll('.ke-grid input').forEach((inp, i) => {
    const v = ed.vals[i];
    const bg = cssColor(v, sc);
    inp.style.background = bg;
    inp.style.color = inkOn(rgbOf(bg));
    // a number being typed keeps its text ("0." stays "0."), everything else shows the value
    const typing = document.activeElement === inp && Number(inp.value) === v;
    if (fresh || !typing) inp.value = String(round(v));
  });
  box.querySelector('.lg-bar').style.background = gradient(sc.map);
  box.querySelector('.lg-lo').textContent = fmt(-m);
  box.querySelector('.lg-hi').textContent = fmt(m);
  const edited = ed.vals.some((v, i) => v !== ed.trained[i]);
  box.querySelector('.ke-state').textContent =
    edited ? 'Edited: the network uses these weights now.' : 'The trained weights.';
}
