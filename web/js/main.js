// Wiring: views <- state <- api. Live prediction while drawing, latest drawing wins.

import { getState, setState, subscribe } from './state.js';
import * as api from './api.js';
import { createLatestWins } from './live.js';
import { setupPad, render as renderPad } from './views/pad.js';
import { setupUpload, render as renderUpload } from './views/upload.js';
import { setupPrediction, render as renderPrediction } from './views/prediction.js';
import { setupInput, render as renderInput } from './views/input.js';
import { setupLayers, render as renderLayers } from './views/layers.js';
import { setupDetail, open as openDetail, render as renderDetail } from './views/detail/dialog.js';
import { setupModelCard, render as renderModelCard } from './views/model-card.js';
import { render as renderStatus } from './views/status.js';
import { setupInterventions, predictLive, toggleChannel, sourceOf } from './interventions.js';
import { setupModels } from './models.js';
import * as training from './training-job.js';
import { setupTrain, render as renderTrain } from './views/train.js';
import * as teach from './teach.js';
import { setupTeachView, render as renderTeach } from './views/teach.js';
import { setupTeachAsk, render as renderTeachAsk } from './views/teach-ask.js';
import { setupAtlas } from './atlas.js';
import { setupEmbedding, render as renderEmbedding } from './views/embedding.js';
import { setupFilterAtlas, render as renderFilterAtlas } from './views/detail/filter-atlas.js';
import {
  setupConfusionDigits, render as renderConfusionDigits,
} from './views/confusion-digits.js';
import { render as renderClassInputs } from './views/class-inputs.js';

const $ = (sel) => document.querySelector(sel);
const el = {
  main: $('main'),
  pad: $('#pad-card'),
  upload: $('[data-testid="upload"]'),
  prediction: $('#prediction-card'),
  input: $('#input-card'),
  layers: $('#layers'),
  detail: $('#detail'),
  modelCard: $('[data-testid="model-card"]'),
  status: $('[data-testid="status"]'),
  train: $('[data-testid="train-view"]'),
  teach: $('[data-testid="teach-view"]'),
  teachAsk: $('[data-testid="teach-ask"]'),
  embedding: $('[data-testid="embedding-map"]'),
};

const IDLE = 'Draw a digit in the black square: every view updates as you draw.';
const SKIP = Symbol('skip');
let sentVersion = -1; // pad version of the last drawing sent
let shownVersion = -1; // pad version the views currently show
let strokeEnd = null; // pad version at the last pointerup, until the views show it
let layersFrame = 0; // the animation frame that will draw the layer explorer, if one is asked for

// ---- live prediction ----------------------------------------------------------------------------

const live = createLatestWins(run, { onResult, onError });

async function run(job) {
  if (job.source === 'upload') return predictLive({ file: job.file });
  // the drawing is exported when the request starts, so a queued job sends the newest drawing
  const v = pad.version;
  if (v === sentVersion || pad.isEmpty() || pad.isUpload()) return SKIP;
  sentVersion = v;
  job.version = v;
  return predictLive({ image: pad.toDataURL() });
}

function onResult(job, result) {
  if (result === SKIP) {
    if (shownVersion === pad.version && getState().status === 'loading' && getState().result) {
      setState({ status: 'ready' });
    }
    return viewsUpdated();
  }
  shownVersion = job.version;
  setState({
    result,
    status: job.version === pad.version ? 'ready' : 'loading',
    message: !result.isDigit
      ? 'This does not look like a digit to the network, so its answer means little; ' +
        'its layers still show what it saw.'
      : `The network reads ${result.label === 8 ? 'an' : 'a'} ${result.label}.`,
    error: false,
  });
  viewsUpdated();
  if (!getState().model) loadModel();
}

function onError(job, err) {
  if (job.source === 'pad' && job.version !== pad.version) return; // a newer drawing will answer
  shownVersion = job.version;
  setState({
    result: null, status: 'error', message: err.message || String(err), error: true,
    highlight: null,
  });
  viewsUpdated();
}

function viewsUpdated() {
  if (layersFrame || strokeEnd === null || shownVersion < strokeEnd) return; // (the frame will)
  strokeEnd = null;
  performance.mark('views-updated');
  performance.measure('stroke-to-views', 'stroke-end', 'views-updated');
}

function reset() {
  live.cancel();
  strokeEnd = null;
  shownVersion = sentVersion = -1;
  setState({
    result: null, status: 'idle', message: IDLE, error: false, upload: null, highlight: null,
    detail: null,
  });
}

function padChanged() {
  if (pad.isEmpty()) return reset();
  if (pad.isUpload() || pad.version === shownVersion) return;
  setState({ status: 'loading' });
  live.submit({ source: 'pad' });
}

const pad = setupPad(el.pad, {
  onChange: padChanged,
  onReset: reset,
  onStrokeEnd() {
    performance.clearMarks('stroke-end');
    performance.clearMarks('views-updated');
    performance.mark('stroke-end');
    strokeEnd = pad.version;
    padChanged(); // send the final drawing now rather than on the next frame
    viewsUpdated(); // (already shown if the last move's answer covered it)
  },
});

setupUpload({
  input: el.upload,
  dropZone: el.pad.querySelector('.pad-wrap'),
  onFile(file) {
    live.cancel();
    strokeEnd = null;
    pad.showImage(file);
    const name = file.name || 'image';
    setState({
      upload: { name }, status: 'loading',
      message: `Reading \u201c${name}\u201d\u2026`, error: false,
    });
    live.submit({ source: 'upload', file, version: pad.version });
  },
  onError(message) {
    setState({ status: 'error', message, error: true });
  },
});

// edits to the network, or another model: send the shown drawing (or upload) again
function refresh(file) {
  sentVersion = shownVersion = -1;
  if (file) live.submit({ source: 'upload', file, version: pad.version }); else padChanged();
}
setupInterventions({ pad, refresh });

// the Train view: a job's weights read the drawing (or upload) the page shows
training.setupTraining(() => sourceOf(getState().result));
setupTrain(el.train, {
  onStart: training.start,
  onStop: training.stop,
  onScrub: training.scrub,
  onUse: training.useJobModel,
});

// Teach it: the learner's labelled drawings, and a fine-tune of the page's model on them
setupTeachAsk(el.teachAsk, { onLabel: teach.add });
setupTeachView(el.teach, {
  onTeach: teach.teach,
  onStop: training.stop,
  onRemove: teach.remove,
  onExport: teach.exportText,
  onImport: teach.importFile,
  onUse: teach.useTaught,
});

// ---- views ------------------------------------------------------------------------------------

// The layer explorer is the costly view: it draws at most once an animation frame, from the
// newest state, and the stroke's views count as updated once it has.
function drawLayersNextFrame() {
  layersFrame ||= requestAnimationFrame(() => {
    layersFrame = 0;
    renderLayers(el.layers, getState());
    viewsUpdated();
  });
}

setupPrediction(el.prediction);
setupInput(el.input, { onToggleSaliency: (on) => setState({ saliency: on }) });
setupLayers(el.layers, {
  onOpen(name, channel, opener) {
    setState({ detail: { name, channel } });
    openDetail(el.detail, opener);
  },
  onHover: (highlight) => setState({ highlight }),
  onToggle: toggleChannel,
});
setupDetail(el.detail, {
  onClose: () => setState({ detail: null }),
  onChannel(delta) {
    const { detail, result } = getState();
    const layer = detail && result && result.layers.find((l) => l.name === detail.name);
    const C = layer ? layer.shape[0] : 1;
    const channel = detail && Math.max(0, Math.min(C - 1, detail.channel + delta));
    if (detail) setState({ detail: { ...detail, channel } });
  },
  loadWeights: api.getWeights,
});

// the atlas (issue 20): what a filter looks for, where the drawing sits among the test digits,
// the digits behind the confusion matrix; any of them can be put on the pad
const atlas = setupAtlas({ pad, embeddingCard: el.embedding, modelCard: el.modelCard });
const loadFrom = (where, focusPad = false) => (digit) =>
  atlas.loadDigit(digit, { where, focusPad });
setupFilterAtlas(el.detail, { onLoadDigit: loadFrom('detail') });
setupEmbedding(el.embedding, { onLoadDigit: loadFrom('embedding') });
setupModelCard(el.modelCard, { onCell: atlas.openCell });
setupConfusionDigits(el.modelCard, { onLoadDigit: loadFrom('confusion', true) });

subscribe((s, changed, prev) => {
  const any = (...keys) => keys.some((k) => changed.has(k));
  if (any('status')) el.main.dataset.state = s.status;
  if (any('status', 'message', 'error', 'modelError')) renderStatus(el.status, s);
  if (any('upload')) {
    renderPad(el.pad, s);
    renderUpload(el.upload, s);
  }
  if (any('result')) renderPrediction(el.prediction, s.result);
  if (any('result', 'model', 'ablated')) drawLayersNextFrame();
  if (any('result', 'saliency', 'highlight')) renderInput(el.input, s);
  if (any('result', 'model', 'detail')) renderDetail(el.detail, s);
  if (any('result', 'model', 'detail', 'channelAtlas', 'atlasNote')) {
    renderFilterAtlas(el.detail, s);
  }
  if (any('result', 'model', 'embedding', 'atlasNote')) renderEmbedding(el.embedding, s);
  if (any('model', 'modelError')) renderModelCard(el.modelCard, s);
  if (any('model', 'modelError', 'confusionCell', 'atlasNote')) {
    renderConfusionDigits(el.modelCard, s);
  }
  if (any('model', 'modelError', 'classInputs')) {
    renderClassInputs(el.modelCard.querySelector('.class-inputs'), s);
  }
  if (any('training', 'trainReading', 'modelName')) renderTrain(el.train, s, prev);
  if (any('result', 'training', 'trainReading', 'modelName', 'teachNote')) {
    renderTeachAsk(el.teachAsk, s);
  }
  const teachKeys = ['teachExamples', 'teachReadings', 'teachNote', 'teachJob', 'teachFilters'];
  if (any('training', 'modelName', 'models', ...teachKeys)) renderTeach(el.teach, s, prev);
});

// ---- start --------------------------------------------------------------------------------------

let modelAsked = null; // { name, done } while GET /api/v1/model for that model is out
/** Load the description of the page's model; resolves once it is in the state (or failed). */
function loadModel() {
  const name = getState().modelName;
  if (modelAsked && modelAsked.name === name) return modelAsked.done;
  const mine = (modelAsked = { name });
  mine.done = (async () => {
    try {
      const model = await api.getModel(name);
      if (modelAsked === mine) setState({ model, modelError: '' });
    } catch (err) {
      if (modelAsked === mine) setState({ modelError: err.message || String(err) });
    } finally {
      if (modelAsked === mine) modelAsked = null;
    }
  })();
  return mine.done;
}
setupModels({
  refresh: () => refresh((sourceOf(getState().result) || {}).file),
  reloadModel: loadModel,
});
teach.setupTeach(() => sourceOf(getState().result)); // (after the models: it reads with theirs)

renderPrediction(el.prediction, null);
renderInput(el.input, getState());
renderLayers(el.layers, getState());
renderModelCard(el.modelCard, getState());
renderEmbedding(el.embedding, getState());
renderTrain(el.train, getState(), null);
renderTeachAsk(el.teachAsk, getState());
renderTeach(el.teach, getState(), null);
setState({ message: IDLE });
el.main.dataset.state = getState().status;
loadModel();
