// A max-pool map's mask over the pool's input: the cell that won each window outlined, the rest
// dimmed, and the window of the cell under the cursor in amber.

import { paintCanvas } from '../../colormap.js';
import { poolWindow } from '../../receptive.js';
import { uis, touch, chScale, canvasFor } from './frame.js';

/** The overlay's canvas and the pool's input at native size, for drawPool. */
export function buildPool(dialog, extra) {
  const v = uis.get(dialog).view;
  let cv = extra.querySelector('[data-testid="pool-overlay"]');
  if (!cv) {
    extra.innerHTML = '<h3>Which input won each window</h3><p class="muted">The pool\u2019s ' +
      'input map. Outlined cells won their window (the pooling mask: the cell each window kept; ' +
      'all-zero windows have no real winner); the rest is dimmed. ' +
      `${touch() ? 'Tap' : 'Hover'} a cell to see its window.</p>`;
    cv = canvasFor(extra, 'pool-overlay', 1, 1);
    cv.dataset.testid = 'pool-overlay';
    cv.setAttribute('role', 'img');
  }
  const mask = v.layer.mask;
  v.inH = mask ? mask.shape[1] : v.prev ? v.prev.data.shape[1] : v.H * 2;
  v.inW = mask ? mask.shape[2] : v.prev ? v.prev.data.shape[2] : v.W * 2;
  const [kh, kw] = [v.inH / v.H, v.inW / v.W];
  v.geo = v.geo || { kh, kw, sh: kh, sw: kw, ph: 0, pw: 0 };
  v.S = Math.max(6, Math.floor(308 / v.inW));
  cv.width = v.inW * v.S;
  cv.height = v.inH * v.S;
  cv.setAttribute('aria-label',
    `Pooling mask of ${v.layer.name} channel ${v.ch} over its ${v.inH} by ${v.inW} input`);
  v.src = document.createElement('canvas'); // the pool's input channel at native size
  v.src.width = v.inW;
  v.src.height = v.inH;
  const n = v.inH * v.inW;
  if (v.prev) {
    const before = v.prev.data.data;
    paintCanvas(v.src, before, v.ch * n, chScale(v.prev.kind, before, v.ch * n, n));
  }
}

/** Paint the mask, and the window of `cell` (the cursor's pooled cell) when there is one. */
export function drawPool(dialog, cell) {
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
    const [width, height] = [(w.c1 - w.c0 + 1) * S - 3, (w.r1 - w.r0 + 1) * S - 3];
    ctx.strokeRect(w.c0 * S + 1.5, w.r0 * S + 1.5, width, height);
  }
}
