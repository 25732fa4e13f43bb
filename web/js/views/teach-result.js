// What a fine-tune learnt: each example's reading before and after, MNIST's test accuracy before
// and after in words, the first filters that moved most (before and after, as heatmaps with
// their colour legend), and "Use this model". Renders a finished fine-tune of state.training.

import { scale, gradient, diverging } from '../colormap.js';
import { esc, fmt, percent, thousands } from '../format.js';
import { paintGrid } from '../tiles.js';

const WAITING = 'When it has learnt, each example\u2019s reading before and after, how well it ' +
  'still reads MNIST\u2019s test digits and the filters that moved most appear here.';

const MARKUP = `
<h3 id="teach-result-title">What it learnt</h3>
<p class="help te-waiting">${WAITING}</p>
<div class="te-done" hidden>
  <p class="te-words"></p>
  <div class="buttons te-use">
    <button type="button" class="btn" data-testid="teach-use" aria-pressed="false">Use this
      model on the whole page</button>
    <button type="button" class="btn te-back" disabled>Back</button>
  </div>
  <div class="te-table" role="region" tabindex="0" aria-labelledby="te-table-caption">
    <table><caption id="te-table-caption">Each example, read before and after</caption>
    <thead><tr><th scope="col">Drawing</th><th scope="col">Label</th>
    <th scope="col">Before</th><th scope="col">After</th></tr></thead><tbody></tbody></table>
  </div>
  <h4>The filters that moved most</h4>
  <p class="help te-filters-about"></p>
  <div class="te-filters"></div>
  <p class="legend te-legend"><span>weight</span><span class="lg-lo"></span>
    <span class="lg-bar"></span><span class="lg-hi"></span></p>
  <p class="help te-layers"></p>
</div>`;

export function setupResult(box, { onUse }) {
  box.innerHTML = MARKUP;
  box.querySelector('.te-legend .lg-bar').style.background = gradient(diverging);
  box.querySelector('[data-testid="teach-use"]').addEventListener('click', () => onUse(true));
  box.querySelector('.te-back').addEventListener('click', () => onUse(false));
}

/** Words and mark for a reading of an example labelled `label`: "reads 4 ✓", or "reads ? ✗"
 * when the model finds it like no digit (`isDigit` false), as the prediction panel says. */
export function readingHtml(label, predicted, probability, isDigit = true) {
  if (predicted == null) return '<span class="muted">reading\u2026</span>';
  const right = isDigit && predicted === label;
  const shown = isDigit ? predicted : '?';
  const sure = probability != null ? ` (${percent(probability)})` : '';
  const said = isDigit ? (right ? ', right' : ', wrong') : ', not a digit to the model';
  return `<span class="${right ? 'te-ok' : 'te-bad'}">${shown} ${right ? '\u2713' : '\u2717'}` +
    `<span class="sr-only">${said}${sure}</span></span>`;
}

/** The MNIST sentence: "it still reads 99.3% of MNIST's test digits, against 99.5% before". */
export function mnistWords(after, before) {
  const against = `of MNIST\u2019s test digits, against ${percent(before)} before`;
  if (after >= before) return `it now reads ${percent(after)} ${against}`;
  if (before - after <= 0.01) return `it still reads ${percent(after)} ${against}`;
  return `it reads only ${percent(after)} ${against}: it forgot some of what it knew`;
}

function words(o) {
  const right = (list) => list.filter((e) => e.label === e.predicted).length;
  const n = o.after.length;
  return `It reads ${right(o.after)} of your ${thousands(n)} examples as you labelled them, ` +
    `against ${right(o.before)} before; ${mnistWords(o.testAccuracy, o.baseTestAccuracy)}.`;
}

function rows(o, images) {
  return o.after.map((after, i) => {
    const before = o.before[i];
    const img = images[i]
      ? `<img src="${esc(images[i])}" alt="Example ${i + 1}" width="28" height="28">`
      : `<span class="muted">${i + 1}</span>`;
    return `<tr><td>${img}</td><td>${after.label}</td>` +
      `<td>${readingHtml(before.label, before.predicted)}</td>` +
      `<td>${readingHtml(after.label, after.predicted)}</td></tr>`;
  }).join('');
}

/** How far each layer's weights moved, in words. */
function layerWords(changed) {
  const moved = Object.entries((changed && changed.layers) || {})
    .filter(([name]) => name.endsWith('.weight'))
    .map(([name, v]) => `${esc(name.replace(/\.weight$/, ''))} ${percent(v)}`);
  return moved.length
    ? `How far each layer\u2019s weights moved, against their size: ` +
      `${moved.join(', ')}.` : '';
}

/** The top filters, before and after, on one shared colour scale. */
function renderFilters(box, f) {
  const grid = box.querySelector('.te-filters');
  const about = box.querySelector('.te-filters-about');
  const legend = box.querySelector('.te-legend');
  const ready = f && f.before && f.after && f.ranked.length;
  legend.hidden = !ready;
  if (!ready) {
    grid.innerHTML = '';
    about.textContent = !f ? 'Loading the filters\u2026' : f.error ||
      (!f.layer ? 'This network has no convolution filters to show.' : 'Loading the filters\u2026');
    return;
  }
  const [, C, kh, kw] = f.before.shape; // (F, C, kh, kw)
  const size = C * kh * kw;
  const of = (w, ch) => w.data.subarray(ch * size, (ch + 1) * size);
  let m = 0;
  for (const [ch] of f.ranked) {
    for (const v of [...of(f.before, ch), ...of(f.after, ch)]) m = Math.max(m, Math.abs(v));
  }
  const sc = scale(-m, m, true);
  about.textContent = `The ${f.ranked.length} filters of ${f.layer} that your examples changed ` +
    'most, as they were (left) and as they are now (right): red weights reward ink, blue ones ' +
    'penalise it, white is 0.';
  grid.innerHTML = f.ranked.map(([ch, change]) =>
    `<figure><div class="te-pair"><canvas role="img" aria-label="Filter ${ch} before"></canvas>` +
    `<canvas role="img" aria-label="Filter ${ch} after"></canvas></div>` +
    `<figcaption>filter ${ch}: moved ${percent(change)}</figcaption></figure>`).join('');
  grid.querySelectorAll('figure').forEach((fig, i) => {
    const [ch] = f.ranked[i];
    const [before, after] = fig.querySelectorAll('canvas');
    paintGrid(before, of(f.before, ch), [C, kh, kw], C, sc); // (C, kh, kw) tiles in a row
    paintGrid(after, of(f.after, ch), [C, kh, kw], C, sc);
  });
  legend.querySelector('.lg-lo').textContent = fmt(sc.lo);
  legend.querySelector('.lg-hi').textContent = fmt(sc.hi);
}

/** Render from state: the finished fine-tune in state.training, if there is one. */
export function renderResult(box, s, prev) {
  const t = s.training && s.training.config && s.training.config.kind === 'finetune' &&
    s.training.status === 'done' && s.training.finetune ? s.training : null;
  const keys = ['training', 'teachFilters', 'modelName', 'teachJob', 'models'];
  if (prev && !keys.some((k) => s[k] !== prev[k])) return;
  box.querySelector('.te-waiting').hidden = !!t;
  box.querySelector('.te-done').hidden = !t;
  if (!t) return;
  const o = t.finetune;
  const name = `training:${t.id}`;
  const use = box.querySelector('[data-testid="teach-use"]');
  use.setAttribute('aria-pressed', String(s.modelName === name));
  const back = box.querySelector('.te-back');
  back.disabled = s.modelName !== name;
  back.textContent = `Back to ${t.config.base_model}`;
  if (prev && prev.training && prev.training.finetune === o && s.teachJob === prev.teachJob &&
      s.teachFilters === prev.teachFilters) return;
  box.querySelector('.te-words').textContent = words(o);
  const job = s.teachJob && s.teachJob.id === t.id ? s.teachJob : null;
  const byKey = new Map(s.teachExamples.map((e) => [e.key, e.image]));
  const images = o.after.map((_, i) => (job ? byKey.get(job.keys[i]) : null));
  box.querySelector('tbody').innerHTML = rows(o, images);
  renderFilters(box, s.teachFilters && s.teachFilters.id === t.id ? s.teachFilters : null);
  box.querySelector('.te-layers').innerHTML = layerWords(o.changed);
}
