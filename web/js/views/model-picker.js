// The model picker in the header: the served models (GET /api/v1/models), the chosen one's
// figures in a sentence, and the toggle that opens compare mode.

import { esc, percent, thousands } from '../format.js';

/** The name the page reads with: the chosen one, else the server's default. */
export const shownName = ({ modelName, models, model }) =>
  modelName || ((models || []).find((m) => m.default) || {}).name || (model && model.name) || '';

/** Options for a select: the list's models, plus `extra` names not in it (marked as such). */
export function options(models, extra = []) {
  const list = (models || []).map((m) => [m.name, `${m.name}${m.default ? ' (default)' : ''}`]);
  for (const name of extra) {
    if (name && !list.some(([n]) => n === name)) {
      const what =
        name.startsWith('training:') ? 'a training run' : 'not on this server\u2019s list';
      list.push([name, `${name} (${what})`]);
    }
  }
  return list.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join('');
}

/** Fill a select with option HTML (only when it changed, so an open menu is left alone). */
export function fill(select, html, value) {
  if (select.dataset.html !== html) {
    select.innerHTML = html;
    select.dataset.html = html;
  }
  select.value = value;
}

/** "19,898 parameters · 98.9% of MNIST's test digits · 2 convolutions" for one list entry. */
function about(m) {
  if (!m) return '';
  const acc = Number(m.test_accuracy);
  const convs = (m.layers || []).filter((k) => k === 'conv2d').length;
  return [
    `${thousands(m.parameters || 0)} parameters`,
    Number.isFinite(acc) && m.test_accuracy !== null
      ? `${percent(acc)} of MNIST\u2019s test digits right` : 'no test accuracy',
    convs ? `${convs} convolution${convs > 1 ? 's' : ''}` : 'no convolution',
  ].join(' \u00b7 ');
}

export function setupPicker(bar, { onPick, onCompare }) {
  bar.querySelector('select').addEventListener('change', (e) => onPick(e.target.value));
  bar.querySelector('[data-testid="compare-toggle"]').addEventListener('click', onCompare);
}

export function render(bar, s) {
  const name = shownName(s);
  const models = s.models || [];
  fill(bar.querySelector('select'),
    options(models, [name]) || '<option value="">the server\u2019s model</option>', name);
  const entry = models.find((m) => m.name === name);
  bar.querySelector('.model-about').textContent = s.models === null
    ? 'Loading the list of models\u2026'
    : entry ? about(entry)
      : models.length ? 'Not one of the served models.' : 'This server lists no other model.';
  const toggle = bar.querySelector('[data-testid="compare-toggle"]');
  toggle.setAttribute('aria-pressed', String(!!s.compare));
  toggle.disabled = models.length < 2 && !s.compare;
}
