// "What would make it a ...": ten digit buttons; the answer shows the edited input, what changed
// (ink added in amber, removed in blue, over the input in grey), the new probabilities, and a
// button that puts the edited image on the pad to keep drawing from.

import { paintGray } from './input.js';
import { percent } from '../format.js';

const ADDED = [255, 176, 0];
const REMOVED = [64, 160, 255];

const EDITED =
  '<canvas class="cf-edited" role="img" aria-label="The edited 28 by 28 input"></canvas>';
const DELTA = '<canvas class="cf-delta" role="img" ' +
  'aria-label="What changed: added ink in amber, removed ink in blue"></canvas>';
const KEY = '<span class="swatch added"></span>ink added ' +
  '<span class="swatch removed"></span>ink removed <span class="swatch kept"></span>your input';
const VIEW = `<div class="cf-figs">
<figure><div class="stage">${EDITED}</div><figcaption>Edited input</figcaption></figure>
<figure><div class="stage">${DELTA}</div><figcaption>What changed</figcaption></figure></div>
<p class="help cf-key">${KEY}</p>
<ol class="probs cf-probs" aria-label="Probability of each digit for the edited input"></ol>
<button type="button" class="btn cf-adopt"
  data-testid="counterfactual-adopt">Draw from this image</button>
<p class="help">It goes on the pad as your drawing; Undo takes it back.</p>`;

export function setupCounterfactual(card, { onAsk, onAdopt }) {
  const row = card.querySelector('.cf-digits');
  for (let d = 0; d < 10; d++) {
    row.insertAdjacentHTML('beforeend', '<button type="button" class="btn cf-digit" ' +
      `data-testid="counterfactual-${d}" data-digit="${d}">${d}</button>`);
  }
  row.addEventListener('click', (e) => {
    const b = e.target.closest('[data-digit]');
    if (b && b.getAttribute('aria-disabled') !== 'true') onAsk(Number(b.dataset.digit));
  });
  const view = card.querySelector('[data-testid="counterfactual-view"]');
  view.addEventListener('click', (e) => e.target.closest('.cf-adopt') && onAdopt());
}

/** The input in grey with the change over it: amber where ink was added, blue where removed. */
function paintDelta(canvas, pixels, delta) {
  const [H, W] = delta.shape;
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(W, H);
  for (let i = 0; i < H * W; i++) {
    const d = delta.data[i];
    const grey = (pixels.data[i] - d) * 110;
    const t = Math.min(1, Math.abs(d) * 2);
    const hue = d > 0 ? ADDED : REMOVED;
    for (let k = 0; k < 3; k++) img.data[i * 4 + k] = grey + (hue[k] - grey) * t;
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function probRows(list, probs, label) {
  list.replaceChildren(...Array.from(probs, (p, d) => {
    const li = document.createElement('li');
    li.className = `prob${d === label ? ' top' : ''}`;
    li.innerHTML = `<span class="prob-digit">${d}</span>` +
      '<span class="prob-track"><span class="prob-bar"></span></span>' +
      `<span class="prob-pct">${percent(p)}</span>`;
    li.querySelector('.prob-bar').style.transform = `scaleX(${Math.min(1, Math.max(0, p))})`;
    return li;
  }));
}

export function render(card, { result, counterfactual: cf }) {
  // the search asks the unedited network, so the digit it already reads is the baseline's
  const current = result ? (result.baseline || result).label : null;
  card.querySelectorAll('[data-digit]').forEach((b) => {
    const d = Number(b.dataset.digit);
    b.setAttribute('aria-disabled', String(current === null || d === current));
    b.setAttribute('aria-pressed', String(!!cf && cf.target === d));
    b.title = current === null ? 'Draw a digit first'
      : d === current ? `The network already reads a ${d}`
        : `Change the drawing until the network reads a ${d}`;
  });
  const view = card.querySelector('[data-testid="counterfactual-view"]');
  view.hidden = !cf;
  if (!cf) return;
  if (!view.querySelector('.cf-figs')) view.querySelector('.cf-answer').innerHTML = VIEW;
  const summary = view.querySelector('.cf-summary');
  const a = cf.answer;
  view.classList.toggle('busy', !!cf.busy);
  view.classList.toggle('failed', !a);
  summary.classList.toggle('error-text', !!cf.error);
  if (!a) {
    summary.textContent =
      cf.error || `Looking for the smallest change that makes it a ${cf.target}\u2026`;
    return;
  }
  const { label, probabilities: p, original: o } = a;
  summary.textContent = `${a.reached ? 'Found' : `Not quite, after ${a.steps} steps`}: ` +
    `the network reads ${label} (${percent(p[label])}) ` +
    `where it read ${o.label} (${percent(o.probabilities[o.label])}); ` +
    `the ink changed by ${a.l1.toFixed(1)} in all (L1).`;
  paintGray(view.querySelector('.cf-edited'), a.pixels);
  paintDelta(view.querySelector('.cf-delta'), a.pixels, a.delta);
  probRows(view.querySelector('.cf-probs'), p, label);
}
