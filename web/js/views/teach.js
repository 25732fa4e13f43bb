// The Teach view: the learner's labelled drawings as a gallery (each with the page's model's
// reading of it, removable), export and import as a JSON file, "Teach it" with its steps, the
// job's words and live chart (the Train view's chart), and what it learnt (teach-result.js).
// It renders state.teachExamples, teachReadings, teachNote and a fine-tune in state.training;
// what the buttons do is the controller's (web/js/teach.js).

import { drawChart, legendItems, markLegend } from './train-chart.js';
import { readingHtml, renderResult, setupResult } from './teach-result.js';
import { esc, percent, thousands } from '../format.js';

const STEPS = [20, 50, 100, 150, 300, 600];
const DEFAULT_STEPS = 150;
const ABOUT = 'Label your own drawings, then teach the network with them: it trains a little ' +
  'more on your examples, mixed with MNIST\u2019s so it does not forget, and shows what changed.';
const CHART_LABEL = 'Training loss, training accuracy, validation accuracy and the accuracy ' +
  'on your examples against steps';
const MARKS = '<span class="te-ok">\u2713 green</span>: the model reads the drawing as its ' +
  'label; <span class="te-bad">\u2717 red</span>: it reads another digit.';

const MARKUP = `
<h2 id="teach-title">Teach it your handwriting</h2>
<p class="help card-about">${ABOUT}</p>
<div class="te-head">
  <h3 id="teach-examples-title">Your examples</h3>
  <p class="help te-count"></p>
</div>
<p class="help te-key">${MARKS}</p>
<div class="te-gallery-box">
  <ul class="te-gallery" data-testid="teach-examples" aria-labelledby="teach-examples-title"></ul>
  <p class="te-empty help">None yet: draw a digit on the pad, then under the prediction pick
    the digit it is. Add a few of each digit the network gets wrong, and some it gets right.</p>
</div>
<p class="status te-note" role="status" aria-live="polite"></p>
<div class="buttons te-files">
  <button type="button" class="btn te-export">Export as a file</button>
  <label class="btn upload-btn">Import a file<input type="file" class="te-import"
    accept=".json,application/json"></label>
</div>
<form class="tr-form te-form">
  <label>Steps <select name="steps">${STEPS.map((v) => `<option value="${v}"${
  v === DEFAULT_STEPS ? ' selected' : ''}>${v}</option>`).join('')}</select></label>
  <div class="buttons">
    <button type="submit" class="btn tr-start" data-testid="teach-start">Teach it</button>
    <button type="button" class="btn te-stop" disabled>Stop</button>
  </div>
  <p class="help te-base"></p>
</form>
<p class="status te-status" role="status" aria-live="polite" data-testid="teach-status"></p>
<figure class="tr-chart te-chart">
  <canvas role="img" aria-label="${CHART_LABEL}" aria-describedby="te-summary"></canvas>
  <figcaption><ul class="tr-legend">${legendItems()}</ul>
  <p class="help" id="te-summary">No teaching yet.</p></figcaption>
</figure>
<section class="te-result" data-testid="teach-result"
  aria-labelledby="teach-result-title"></section>`;

const shown = { t: null }; // the fine-tune the chart last drew (null: none)

/** The fine-tune in state.training, or null (a job from the Train view is not this view's). */
export const fineTune = (t) => (t && t.config && t.config.kind === 'finetune' ? t : null);

export function setupTeachView(container, callbacks) {
  const { onTeach, onStop, onRemove, onExport, onImport, onUse } = callbacks;
  container.innerHTML = MARKUP;
  const q = (s) => container.querySelector(s);
  markLegend(q('.tr-legend'));
  setupResult(q('.te-result'), { onUse });
  q('.te-form').addEventListener('submit', (e) => {
    e.preventDefault();
    onTeach(Number(new FormData(e.target).get('steps')));
  });
  q('.te-stop').addEventListener('click', onStop);
  q('.te-export').addEventListener('click', () => {
    const url = URL.createObjectURL(new Blob([onExport()], { type: 'application/json' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = 'convscope-examples.json';
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  q('.te-import').addEventListener('change', (e) => {
    const [file] = e.target.files;
    e.target.value = ''; // (the same file again is a new choice)
    if (file) onImport(file);
  });
  const gallery = q('.te-gallery');
  gallery.addEventListener('click', (e) => {
    const button = e.target.closest('.te-remove');
    if (!button) return;
    const buttons = [...gallery.querySelectorAll('.te-remove')];
    const at = buttons.indexOf(button);
    onRemove(button.closest('li').dataset.key); // (renders at once)
    const left = gallery.querySelectorAll('.te-remove');
    (left[Math.min(at, left.length - 1)] || q('.te-export')).focus();
  });
  const chart = q('.te-chart canvas');
  new ResizeObserver(() => drawChart(chart, shown.t)).observe(chart);
}

/** One gallery tile: the drawing, its label, the model's reading, and Remove. */
function tile(example) {
  const li = document.createElement('li');
  li.dataset.key = example.key;
  li.innerHTML = '<img alt="" width="56" height="56"><span class="te-label"></span>' +
    '<span class="te-read"></span><button type="button" class="te-remove">\u00d7</button>';
  li.querySelector('img').src = example.image;
  return li;
}

function renderGallery(ul, examples, readings) {
  const tiles = new Map([...ul.children].map((li) => [li.dataset.key, li]));
  examples.forEach((e, i) => {
    const li = tiles.get(e.key) || tile(e);
    tiles.delete(e.key);
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
    const r = readings && readings.byKey[e.key];
    const html = `reads ${readingHtml(e.label, r ? r.label : null, r && r.probability,
      !r || r.isDigit)}`;
    if (li.dataset.html !== html) li.querySelector('.te-read').innerHTML = li.dataset.html = html;
    li.querySelector('.te-label').textContent = String(e.label);
    li.querySelector('img').alt = `Example ${i + 1}, labelled ${e.label}`;
    li.querySelector('.te-remove')
      .setAttribute('aria-label', `Remove example ${i + 1}, labelled ${e.label}`);
  });
  for (const li of tiles.values()) li.remove();
}

/** Render the view from state (prev: the state before, to skip what did not change). */
export function render(container, s, prev) {
  const q = (sel) => container.querySelector(sel);
  const changed = (...keys) => !prev || keys.some((k) => s[k] !== prev[k]);
  const n = s.teachExamples.length;
  if (changed('teachExamples', 'teachReadings', 'modelName')) {
    const readings = s.teachReadings && s.teachReadings.model === s.modelName
      ? s.teachReadings : null;
    renderGallery(q('.te-gallery'), s.teachExamples, readings);
    q('.te-empty').hidden = n > 0;
    const right = readings
      ? s.teachExamples.filter((e) => {
        const r = readings.byKey[e.key] || {};
        return r.isDigit && r.label === e.label;
      }).length : 0;
    q('.te-count').textContent = !n ? ''
      : `${thousands(n)} example${n === 1 ? '' : 's'}` +
        (readings ? `; the model reads ${right} of them as labelled` : '');
    q('.te-export').disabled = !n;
  }
  if (changed('teachNote', 'teachReadings')) {
    const note = s.teachNote && s.teachNote.where === 'view' ? s.teachNote : null;
    const failed = s.teachReadings && s.teachReadings.error;
    q('.te-note').textContent = note ? note.message : failed || '';
    q('.te-note').classList.toggle('error', !!(note ? note.error : failed));
  }

  const t = fineTune(s.training);
  const other = s.training && !t ? s.training : null; // a job from the Train view
  const live = !!s.training && (s.training.running || s.training.status === 'starting');
  q('[data-testid="teach-start"]').disabled = live || !n;
  q('.te-stop').disabled = !(t && t.running);
  const status = q('.te-status');
  status.textContent = t ? t.message
    : other && live ? 'A training from the Train view is running: teach once it has ended.'
      : n ? 'Ready to teach.' : 'Add examples, then teach.';
  status.classList.toggle('error', !!(t && t.error));
  status.classList.toggle('busy', !!t && live && !t.error);
  if (changed('modelName', 'models', 'teachExamples')) q('.te-base').innerHTML = baseWords(s);

  const p = prev && fineTune(prev.training);
  shown.t = t;
  if (!prev || (t !== p && (!p || !t || t.curve !== p.curve || t.val !== p.val ||
      t.total !== p.total))) {
    if (prev) drawChart(q('.te-chart canvas'), t); // (the first: the ResizeObserver's, laid out)
    q('#te-summary').textContent = summary(t);
  }
  renderResult(q('.te-result'), s, prev);
}

/** Which model "Teach it" teaches, in words. */
function baseWords({ modelName, models, teachExamples }) {
  const served = models || [];
  const fallback = served.find((m) => m.default);
  const mine = modelName && served.some((m) => m.name === modelName);
  const name = mine ? modelName : fallback && fallback.name;
  if (!name) return '';
  const what = `<b>${esc(name)}</b>` + (mine || !modelName ? ', the model this page reads with,'
    : ' (a taught or trained model cannot be taught again: its served model is)');
  return `It teaches ${what} on your ${thousands(teachExamples.length)} examples.`;
}

/** The chart in words: where the examples' and MNIST's accuracy stand. */
function summary(t) {
  if (!t || !t.curve || !t.curve.length) {
    return t && t.id ? 'Waiting for the first steps\u2026' : 'No teaching yet.';
  }
  const [step] = t.curve[t.curve.length - 1];
  const measured = t.val.filter((v) => Number.isFinite(v[3]));
  const first = measured[0];
  const last = measured[measured.length - 1];
  return `Step ${thousands(step)} of ${thousands(t.total)}` +
    (last ? `: accuracy on your examples ${percent(last[3])} at step ${thousands(last[0])}` +
      (first !== last ? ` (${percent(first[3])} at step ${thousands(first[0])})` : '') +
      `, on 1,000 MNIST digits held out ${percent(last[1])}.` : '.');
}
