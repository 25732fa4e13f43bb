// The edits bar: which maps are switched off and how many kernels are changed, with Reset; and
// the unedited network's answer beside the prediction while any edit is on.

import { percent } from '../format.js';

export function renderBar(bar, { ablated, kernels }) {
  const off = Object.values(ablated).reduce((n, c) => n + c.length, 0);
  const swapped = Object.values(kernels).reduce((n, k) => n + Object.keys(k).length, 0);
  bar.hidden = !off && !swapped;
  const parts = [];
  if (off) {
    const which = Object.entries(ablated).map(([l, c]) => `${l}: ${c.join(', ')}`).join('; ');
    parts.push(`${off} switched off (${which})`);
  }
  if (swapped) parts.push(`${swapped} kernel${swapped > 1 ? 's' : ''} edited`);
  bar.querySelector('.edits-text').textContent = parts.join('; ');
}

/** The unedited answer in words, and a tick on each probability bar where it stood. */
export function renderBaseline(card, result) {
  const base = result && result.baseline;
  const line = card.querySelector('.baseline');
  line.hidden = !base;
  card.querySelectorAll('.prob-track').forEach((track, d) => {
    let tick = track.querySelector('.prob-base');
    if (!tick) {
      track.append((tick = Object.assign(document.createElement('i'), { className: 'prob-base' })));
    }
    const now = result && result.probabilities[d];
    tick.hidden = !base || Math.abs(base.probabilities[d] - now) < 0.005;
    if (!tick.hidden) {
      tick.style.left = `calc(${base.probabilities[d] * 100}% - ${base.probabilities[d] * 3}px)`;
    }
  });
  if (base) {
    line.textContent = `Without your edits: ${base.label} ` +
      `(${percent(base.probabilities[base.label])}); ` +
      'a black tick marks a bar\u2019s old length where it moved.';
  }
}
