// The model card's ten class inputs: for each digit, an image optimised (from noise, with jitter
// and blur) until the network answers that digit, and how sure it then is. Few people would read
// them as digits: the network learnt to tell ten digits apart, not what a digit looks like.

import { percent } from '../format.js';
import { paintGray } from './input.js';

const ABOUT = 'Each image was made, starting from noise, by changing its pixels until the ' +
  'network answers that digit: no person would read most of them as digits, yet the network ' +
  'is all but certain, because it only learnt to tell ten digits apart, not what a digit is.';

export function render(container, { model, classInputs: ci }) {
  if (!container) return;
  if (!model || model.atlas !== true) {
    container.innerHTML = model ? '<h3>Ten images it is sure of</h3><p class="help">This model ' +
      'has no atlas, so its class inputs were not computed.</p>' : '';
    return;
  }
  if (!container.querySelector('.ci-list')) {
    container.innerHTML = '<h3>Ten images it is sure of</h3>' +
      `<p class="help ci-about">${ABOUT}</p><ol class="ci-list">` +
      Array.from({ length: 10 }, (_, d) => '<li><figure><div class="stage"><canvas role="img" ' +
        `aria-label="The image made for ${d}"></canvas></div>` +
        `<figcaption><b>${d}</b> <span class="ci-p">\u2013</span></figcaption></figure></li>`)
        .join('') + '</ol><p class="help ci-status" role="status"></p>';
  }
  const items = container.querySelectorAll('.ci-list li');
  const classes = ci && ci.classes ? ci.classes : [];
  items.forEach((li, d) => {
    const c = classes.find((k) => k.label === d);
    const canvas = li.querySelector('canvas');
    if (c) paintGray(canvas, c.image);
    li.querySelector('.ci-p').textContent = c ? `${percent(c.probability)} sure` : '\u2013';
    canvas.setAttribute('aria-label', c
      ? `The image made for ${d}: the network reads it as ${d}, ${percent(c.probability)} sure`
      : `The image made for ${d} (not loaded)`);
  });
  const status = container.querySelector('.ci-status');
  status.classList.toggle('error-text', !!(ci && ci.error));
  status.textContent = ci && ci.error ? `The class inputs could not be loaded: ${ci.error}`
    : !ci || ci.busy ? 'Loading the ten images\u2026' : '';
}
