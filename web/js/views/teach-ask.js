// Under the prediction: "Not right? This is a ..." with ten digit buttons that add the drawing,
// labelled, to the learner's examples (the Teach view); what became of it; and, once a taught
// model exists and the page does not use it, how the taught model reads the drawing.

import { percent } from '../format.js';

export function setupTeachAsk(container, { onLabel }) {
  const group = container.querySelector('.te-digits');
  group.innerHTML = [...Array(10).keys()].map((d) =>
    `<button type="button" class="btn" data-testid="teach-label-${d}" data-digit="${d}" ` +
    `aria-describedby="teach-ask-help">${d}</button>`).join('');
  group.addEventListener('click', (e) => {
    const button = e.target.closest('[data-digit]');
    if (button) onLabel(Number(button.dataset.digit));
  });
}

/** The line beside the page's own reading: the taught model's, while it is not the one in use. */
function taughtWords({ training: t, trainReading: r, modelName, result }) {
  const name = t && t.id ? `training:${t.id}` : '';
  const fine = !!t && t.config && t.config.kind === 'finetune' && t.status === 'done';
  if (!fine || modelName === name || !result || !r || r.model !== name || !r.result) return '';
  const { label, probabilities } = r.result;
  return `The taught model reads it as ${label} (${percent(probabilities[label])}); ` +
    `this one as ${result.label}.`;
}

export function render(container, s) {
  container.querySelectorAll('[data-digit]').forEach((b) => (b.disabled = !s.result));
  const note = s.teachNote && s.teachNote.where === 'ask' ? s.teachNote : null;
  const line = container.querySelector('.te-ask-note');
  line.textContent = note ? note.message : '';
  line.classList.toggle('error-text', !!(note && note.error));
  const taught = container.querySelector('[data-testid="teach-taught"]');
  const words = taughtWords(s);
  if (taught.textContent !== words) taught.textContent = words;
}
