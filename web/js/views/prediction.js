// The predicted digit, large, and ten probability bars with percentages.

const rowsOf = new WeakMap();

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
}

const pct = (p) => (p >= 0.9995 ? '100%' : p < 0.0005 ? '0%' : `${(p * 100).toFixed(p < 0.1 ? 1 : 0)}%`);

export function render(container, result) {
  const digit = container.querySelector('[data-testid="prediction"]');
  const note = container.querySelector('.prediction-note');
  const probs = result ? result.probabilities : null;
  digit.textContent = result ? String(result.label) : '';
  container.classList.toggle('empty', !result);
  if (result) {
    const p = probs[result.label];
    const t = result.timings && result.timings.total;
    note.textContent = `${pct(p)} sure${Number.isFinite(t) ? ` \u00b7 ${t.toFixed(1)} ms` : ''}`;
  } else {
    note.textContent = 'Nothing to read yet';
  }
  rowsOf.get(container).forEach((row, d) => {
    const p = probs && Number.isFinite(probs[d]) ? Math.min(1, Math.max(0, probs[d])) : 0;
    row.bar.style.transform = `scaleX(${p})`;
    row.pct.textContent = probs ? pct(p) : '\u2013';
    row.li.classList.toggle('top', !!result && d === result.label);
    row.li.setAttribute('aria-label', probs ? `${d}: ${pct(p)}` : `${d}: no prediction`);
  });
}
