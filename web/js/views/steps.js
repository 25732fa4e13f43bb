// The preprocessing strip: the six steps from the decoded drawing to the 28x28 input, a picture
// and one line each. It is asked for only while the strip is open.

import { paintGray } from './input.js';
import { esc } from '../format.js';

export function setupSteps(details, { onToggle }) {
  details.addEventListener('toggle', () => onToggle(details.open));
}

export function render(details, steps) {
  const list = details.querySelector('.steps-list');
  const status = details.querySelector('.steps-status');
  const items = (steps && steps.list) || [];
  status.textContent = (steps && steps.error) ||
    (items.length ? '' : 'Draw a digit or upload an image to see its steps.');
  list.replaceChildren(...items.map((step, i) => {
    const li = document.createElement('li');
    const [H, W] = step.image.shape.slice(-2);
    li.innerHTML = '<div class="step-img"><canvas role="img"></canvas></div>' +
      `<b>${i + 1}. ${esc(step.name)}</b> <span class="step-size">${H}\u00d7${W}</span>` +
      `<span class="step-note">${esc(step.note)}</span>`;
    const cv = li.querySelector('canvas');
    cv.setAttribute('aria-label', `Step ${i + 1}, ${step.name}: ${H} by ${W} pixels`);
    paintGray(cv, step.image);
    return li;
  }));
}
