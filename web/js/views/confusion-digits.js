// The digits behind one number of the model card's confusion matrix: the test digits of that
// cell the atlas holds (every mistake; the surest of a right answer), each with how sure the
// network was, and each a button that puts it on the pad.

import { percent, thousands } from '../format.js';
import { aDigit, digitWords, fillDigitButtons } from './digits.js';

const HINT = 'Press a number in the matrix to see its digits here; any of them goes on the pad.';

/** Mark the matrix's pressed cell, and fill the panel beside it (card: the model card). */
export function render(card, { confusionCell: cell, atlasNote }) {
  const panel = card.querySelector('[data-testid="confusion-digits"]');
  if (!panel) return;
  card.querySelectorAll('.conf-cell').forEach((b) => b.setAttribute('aria-pressed', String(
    !!cell && Number(b.dataset.truth) === cell.truth && Number(b.dataset.predicted) ===
      cell.predicted)));
  if (!panel.firstChild) {
    panel.innerHTML = '<h4 class="cd-title"></h4><p class="help cd-text"></p>' +
      '<ol class="digit-list cd-list"></ol><p class="help cd-note" role="status"></p>';
  }
  const q = (s) => panel.querySelector(s);
  const list = q('.cd-list');
  const title = q('.cd-title');
  const text = q('.cd-text');
  if (!cell) {
    title.textContent = 'The digits behind a number';
    text.textContent = HINT;
    list.replaceChildren();
    list.digits = null;
  } else {
    const { truth, predicted } = cell;
    const right = truth === predicted;
    title.textContent = right ? `${truth}s it read right` : `${truth}s it read as ${predicted}`;
    text.classList.toggle('error-text', !!cell.error);
    if (cell.busy || cell.error) {
      text.textContent = cell.error ? `They could not be loaded: ${cell.error}` : 'Loading\u2026';
      list.replaceChildren();
      list.digits = null;
    } else {
      const shown = cell.digits.length;
      text.textContent = !cell.count
        ? `None: it never read ${aDigit(truth)} as ${aDigit(predicted)}.`
        : shown < cell.count
        ? `The ${thousands(shown)} it was surest of, of ${thousands(cell.count)}; ` +
          'the percentage is how sure it was.'
        : `All ${thousands(cell.count)} of them; the percentage is how sure it was` +
          `${right ? '' : ` that each is ${aDigit(predicted)}`}.`;
      list.digits = cell.digits;
      fillDigitButtons(list, cell.digits, {
        image: (d) => d.image,
        caption: (d) => percent(d.probabilities ? d.probabilities[d.predicted] : NaN),
        label: (d) => `${digitWords(d)}: put it on the pad`,
      });
    }
  }
  const note = atlasNote && atlasNote.where === 'confusion' ? atlasNote : null;
  q('.cd-note').textContent = note ? note.message : '';
  q('.cd-note').classList.toggle('error-text', !!(note && note.error));
}

/** onLoadDigit(digit) when one of the panel's digits is pressed. */
export function setupConfusionDigits(card, { onLoadDigit }) {
  card.addEventListener('click', (e) => {
    const b = e.target.closest('.cd-list .digit-btn[data-n]');
    const list = b && b.closest('.cd-list');
    if (list && list.digits) onLoadDigit(list.digits[Number(b.dataset.n)]);
  });
}
