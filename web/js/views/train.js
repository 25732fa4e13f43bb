// The Train view: the knobs, Start and Stop, the live chart, the evolving kernels, the drawing as
// the job's weights read it, the snapshot slider and "Use this model". It renders state.training
// and state.trainReading; what the buttons do is the controller's (web/js/training-job.js).

import { drawChart, legendItems, markLegend } from './train-chart.js';
import {
  renderKernels, renderNote, renderReading, setupKernels, setupReading,
} from './train-maps.js';
import { percent, thousands } from '../format.js';

// the choices of the form's selects, as [value, words]
const ARCHS = [
  ['default', 'Two conv blocks (the first default)'],
  ['three-conv', 'Three conv layers (the shipped default)'], ['tiny', 'Tiny CNN'],
  ['lenet5', 'LeNet-5'], ['mlp', 'Dense only (no convolutions)'],
];
const SIZES = [1000, 5000, 10000, 30000, 60000].map((v) => [v, thousands(v)]);
const EPOCHS = [1, 2, 3, 4, 5].map((v) => [v, v]);
const RATES = [
  ['', 'default'], ...['0.0005', '0.001', '0.002', '0.005', '0.01'].map((v) => [v, v]),
];
const opts = (list, chosen) => list.map(([v, t]) =>
  `<option value="${v}"${v === chosen ? ' selected' : ''}>${t}</option>`).join('');

const ABOUT = 'Train a new network on MNIST on the server and watch it learn: its loss and ' +
  'accuracy, its first filters, and how it reads your drawing as it goes.';
const CHART_LABEL = 'Training loss, training accuracy and validation accuracy against steps';
const SCALE = '<span class="lg-lo"></span><span class="lg-bar"></span><span class="lg-hi"></span>';
const ANSWER = '<div class="prediction-digit"><output class="digit"></output>' +
  '<p class="tr-note prediction-note"></p></div>';

// (a tag broken across lines breaks between its attributes, which adds nothing to the DOM)
const MARKUP = `
<h2 id="train-title">Train a network</h2>
<p class="help card-about">${ABOUT}</p>
<form class="tr-form">
  <label>Architecture <select name="architecture">${opts(ARCHS, 'default')}</select></label>
  <label>Images <select name="train_size">${opts(SIZES, 60000)}</select></label>
  <label>Epochs <select name="epochs">${opts(EPOCHS, 1)}</select></label>
  <label>Learning rate <select name="learning_rate">${opts(RATES, '')}</select></label>
  <label class="check"><input type="checkbox"
    name="augment"> Augment (shift, rotate, thicken)</label>
  <div class="buttons">
    <button type="submit" class="btn tr-start" data-testid="train-start">Start training</button>
    <button type="button" class="btn tr-stop" data-testid="train-stop" disabled>Stop</button>
  </div>
</form>
<p class="status tr-status" role="status" aria-live="polite" data-testid="train-status"></p>
<div class="tr-grid">
  <figure class="tr-chart">
    <canvas data-testid="train-chart" role="img" aria-label="${CHART_LABEL}"
      aria-describedby="tr-summary"></canvas>
    <figcaption><ul class="tr-legend">${legendItems()}</ul>
    <p class="help" id="tr-summary">No training yet.</p></figcaption>
  </figure>
  <figure class="tr-kernels" data-testid="train-kernels">
    <canvas role="img"></canvas>
    <figcaption><span class="tk-cap"></span>
    <span class="legend">${SCALE}</span>
    <span class="help">Weights: red positive, blue negative, white 0.</span></figcaption>
  </figure>
  <div class="tr-read">
    <h3>Your drawing, read by this network</h3>
    <div class="tr-answer">${ANSWER}
    <ol class="probs" aria-label="Probability of each digit, as this network reads it"></ol></div>
    <div class="tr-maps"></div>
  </div>
</div>
<div class="tr-scrub">
  <label for="train-slider">Moment of training</label>
  <input type="range" id="train-slider" data-testid="train-slider"
    min="0" max="0" value="0" disabled>
  <output for="train-slider" class="tr-at">&ndash;</output>
</div>
<div class="buttons tr-use">
  <button type="button" class="btn" data-testid="use-model" disabled
    aria-pressed="false">Use this model on the whole page</button>
  <button type="button" class="btn tr-back" disabled>Back to the shipped model</button>
</div>`;

/** The form's settings as the API's body (learning rate only when one is chosen). */
function config(form) {
  const f = new FormData(form);
  const body = {
    architecture: f.get('architecture'),
    train_size: Number(f.get('train_size')),
    epochs: Number(f.get('epochs')),
    augment: f.has('augment'),
  };
  if (f.get('learning_rate')) body.learning_rate = Number(f.get('learning_rate'));
  return body;
}

// what the chart, slider and reading last showed
const shown = { t: null, snaps: [], reading: null };

/** Where the slider is: a snapshot's index, or the last position (snapshots.length) for now. */
const sliderIndex = (t) =>
  t.at == null ? t.snapshots.length : Math.max(0, t.snapshots.findIndex((s) => s.step === t.at));

export function setupTrain(container, { onStart, onStop, onScrub, onUse }) {
  container.innerHTML = MARKUP;
  const q = (s) => container.querySelector(s);
  markLegend(q('.tr-legend'));
  setupKernels(q('.tr-kernels'));
  setupReading(q('.tr-read'));
  q('.tr-form').addEventListener('submit', (e) => {
    e.preventDefault();
    onStart(config(e.target));
  });
  q('.tr-stop').addEventListener('click', onStop);
  q('.tr-use [data-testid="use-model"]').addEventListener('click', () => onUse(true));
  q('.tr-back').addEventListener('click', () => onUse(false));
  const slider = q('[data-testid="train-slider"]');
  slider.addEventListener('input', () => {
    const i = Number(slider.value);
    onScrub(i >= shown.snaps.length ? null : shown.snaps[i].step);
  });
  const chart = q('[data-testid="train-chart"]');
  new ResizeObserver(() => drawChart(chart, shown.t)).observe(chart);
}

/** Render the view from state (prev: the state before, to skip what did not change). */
export function render(container, s, prev) {
  const q = (sel) => container.querySelector(sel);
  const t = s.training;
  const p = prev && prev.training;
  const live = !!t && (t.running || t.status === 'starting');
  q('.tr-start').disabled = live;
  q('.tr-stop').disabled = !(t && t.running);
  const status = q('.tr-status');
  status.textContent = t ? t.message
    : 'Pick the settings and start: 1,000 images take seconds, 60,000 under a minute.';
  status.classList.toggle('error', !!(t && t.error));
  status.classList.toggle('busy', live && !(t && t.error));

  shown.t = t;
  // (the learner's examples are a fine-tune's: a job from scratch has none)
  q('.tr-legend [data-key="ex"]').hidden = !(t && t.config && t.config.kind === 'finetune');
  if (!p || !t || t.curve !== p.curve || t.val !== p.val || t.total !== p.total) {
    // (the first render leaves the empty chart to the ResizeObserver, which runs after layout:
    // measuring the canvas here would lay the page out in the middle of its start)
    if (prev) drawChart(q('[data-testid="train-chart"]'), t);
    q('#tr-summary').textContent = summary(t);
  }
  if (!p || !t || t.kernels !== p.kernels) {
    const none = t && t.step && !t.kernels
      ? 'This network has no convolution layer, so no filters to show.'
      : 'The first convolution layer\u2019s filters appear once training starts.';
    renderKernels(q('.tr-kernels'), t && t.kernels, none);
  }

  const slider = q('[data-testid="train-slider"]');
  const snaps = (t && t.snapshots) || [];
  shown.snaps = snaps;
  slider.disabled = !t || !t.id || !snaps.length;
  slider.max = String(snaps.length);
  slider.value = String(t && t.snapshots ? sliderIndex(t) : 0);
  const at = t && t.at != null ? snaps.find((x) => x.step === t.at) : null;
  const atText = at
    ? `step ${thousands(at.step)}${Number.isFinite(at.val_accuracy)
      ? `, validation accuracy ${percent(at.val_accuracy)}` : ''}`
    : t && t.id ? `now, step ${thousands(t.step || 0)}${t.running ? ' (live)' : ' (the end)'}`
      : 'no training yet';
  slider.setAttribute('aria-valuetext', atText);
  q('.tr-at').textContent = atText;

  if (!prev || s.trainReading !== prev.trainReading || t !== p) {
    const r = s.trainReading;
    const step = r && r.model.split('@')[1];
    const note = !t || !t.id ? 'Start a training to see it read your drawing.'
      : !r ? 'Draw a digit on the pad to see this network read it.'
        : step ? `At step ${thousands(Number(step))} of training`
          : `With the weights of step ${thousands(t.step || 0)}`;
    const reading = t && t.id ? s.trainReading : null;
    // (not at each progress event)
    if (!prev || reading !== shown.reading) renderReading(q('.tr-read'), reading);
    shown.reading = reading;
    renderNote(q('.tr-read'), reading, note);
  }

  const mine = !!t && !!t.id && s.modelName === `training:${t.id}`;
  const use = q('[data-testid="use-model"]');
  use.disabled = !t || !t.id || t.status === 'lost' || !t.step;
  use.setAttribute('aria-pressed', String(mine));
  q('.tr-back').disabled = s.modelName == null;
}

/** The chart in words, for screen readers and for anyone who reads numbers faster than lines. */
function summary(t) {
  if (!t || !t.curve || !t.curve.length) {
    return t && t.id ? 'Waiting for the first steps\u2026' : 'No training yet.';
  }
  const [step, loss, acc] = t.curve[t.curve.length - 1];
  const v = t.val[t.val.length - 1];
  const first = t.curve[0];
  return `Step ${thousands(step)} of ${thousands(t.total)} (epoch ${t.epoch}): ` +
    `training loss ${loss.toFixed(3)} (${first[1].toFixed(3)} at step ${thousands(first[0])}), ` +
    `training accuracy ${percent(acc)}` +
    (v ? `, validation accuracy ${percent(v[1])} at step ${thousands(v[0])}` : '') +
    (t.imgPerS ? `; ${thousands(Math.round(t.imgPerS))} images a second.` : '.') +
    (t.testAccuracy != null ? ` Test accuracy ${percent(t.testAccuracy)}.` : '');
}
