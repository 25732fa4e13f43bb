// The predicted digit, large, and ten probability bars with percentages. On a phone a compact
// copy of the answer floats at the bottom while the pad is on screen and this card is not.
// When the server says the input is not like any digit the network learnt from (isDigit
// false), a "?" replaces the digit and the note says so: the bars are its guess, not an answer.

import { percent } from '../format.js';

const rowsOf = new WeakMap();

/** Show the mini answer only while the pad is on screen and the big digit is not (fully). */
function watchMini(container, mini) {
  const pad = document.querySelector('[data-testid="pad"]');
  if (!pad || !('IntersectionObserver' in window)) return;
  const seen = { pad: false, digit: false };
  const watch = (key, el, minRatio, options) => new IntersectionObserver((entries) => {
    const e = entries[entries.length - 1];
    seen[key] = e.isIntersecting && e.intersectionRatio >= minRatio;
    mini.classList.toggle('off-screen', !seen.pad || seen.digit);
    mini.hidden = !mini.textContent || mini.classList.contains('off-screen');
  }, options).observe(el);
  watch('pad', pad, 0, { threshold: 0 });
  // the digit counts as seen when it is whole and clear of the band the mini would cover
  watch('digit', container.querySelector('.prediction-digit'), 0.99, {
    threshold: [0, 1], rootMargin: '0px 0px -72px 0px',
  });
}

export function setupPrediction(container) {
  const list = container.querySelector('[data-testid="probabilities"]');
  const rows = [];
  for (let d = 0; d < 10; d++) {
    const li = document.createElement('li');
    li.className = 'prob';
    li.innerHTML =
      `<span class="prob-digit">${d}</span>` +
      '<span class="prob-track"><span class="prob-bar"></span></span>' +
      '<span class="prob-pct">\u2013</span>';
    list.append(li);
    rows.push({ li, bar: li.querySelector('.prob-bar'), pct: li.querySelector('.prob-pct') });
  }
  rowsOf.set(container, rows);
  watchMini(container, container.querySelector('[data-testid="prediction-mini"]'));
}


export function render(container, result) {
  const digit = container.querySelector('[data-testid="prediction"]');
  const note = container.querySelector('.prediction-note');
  const mini = container.querySelector('[data-testid="prediction-mini"]');
  const probs = result ? result.probabilities : null;
  const notDigit = !!result && !result.isDigit;
  digit.textContent = result ? (notDigit ? '?' : String(result.label)) : '';
  container.classList.toggle('empty', !result);
  container.classList.toggle('not-digit', notDigit);
  if (notDigit) {
    note.innerHTML = '<b>Not like any digit it learnt</b>';
    note.append(`its nearest guess, ${result.label}, means little here`);
    mini.innerHTML = '<b>?</b>';
    mini.append('not like a digit \u00b7 bars below');
  } else if (result) {
    const p = probs[result.label];
    const t = result.timings && result.timings.total;
    note.innerHTML = `<b>${percent(p)} sure</b>`;
    if (Number.isFinite(t)) note.append(`computed in ${t.toFixed(1)} ms on the server`);
    mini.innerHTML = `<b>${result.label}</b>`;
    mini.append(`${percent(p)} sure \u00b7 bars below`);
  } else {
    note.textContent = 'Nothing to read yet';
    mini.textContent = '';
  }
  mini.hidden = !result || mini.classList.contains('off-screen');
  rowsOf.get(container).forEach((row, d) => {
    const p = probs && Number.isFinite(probs[d]) ? Math.min(1, Math.max(0, probs[d])) : 0;
    row.bar.style.transform = `scaleX(${p})`;
    row.pct.textContent = probs ? percent(p) : '\u2013';
    row.li.classList.toggle('top', !!result && d === result.label);
    row.li.setAttribute('aria-label', probs ? `${d}: ${percent(p)}` : `${d}: no prediction`);
  });
}
