// The Train view's controller (issue 11): start and stop a job on the server, follow its one event
// stream, keep its curves, kernels and snapshots in state, and have the job's weights (live, or
// at a snapshot) re-read the person's drawing, one request in flight, the newest waiting.

import { getState, setState, subscribe } from './state.js';
import * as api from './api.js';
import { createLatestWins } from './live.js';
import { percent } from './format.js';

const WHY = {
  403: 'Training is switched off on this server.',
  429: 'The server cannot take another job from you now.',
  503: 'The server cannot train right now.',
};
const words = (err) =>
  (WHY[err.status] ? `${WHY[err.status]} ${err.message}` : err.message || String(err));
const JOB_KEY = 'convscope-training-job'; // this browser's latest job, so a reload finds it again
const TRAINING =
  'Training: the curves, the filters and the reading of your drawing update as it learns.';

/** Where a waiting job stands, in words: `position` 1 is next to start. */
export function waiting(position) {
  const ahead = Math.max(0, position - 1);
  if (!ahead) return 'Waiting for a free trainer: yours is next.';
  return `Waiting for a free trainer: ${ahead} job${ahead === 1 ? '' : 's'} ahead of yours.`;
}

function remember(id) {
  try {
    if (id) localStorage.setItem(JOB_KEY, id);
    else localStorage.removeItem(JOB_KEY);
  } catch {
    /* no storage: a reload starts afresh */
  }
}

function remembered() {
  try {
    return localStorage.getItem(JOB_KEY);
  } catch {
    return null;
  }
}

/** The state of a job just started or found again: nothing learnt yet on the page's side. */
const fresh = (id, config, status, position) => ({
  id, config, status, position, running: true, step: 0, total: 0, epoch: 0, imgPerS: 0,
  curve: [], val: [], kernels: null, snapshots: [], at: null, error: false,
  message: status === 'queued' ? waiting(position) : TRAINING,
});

let events = null; // this tab's one EventSource
let drawing = () => null; // the shown drawing as a source ({ image } or { file }), or null

const patch = (fields) => setState({ training: { ...getState().training, ...fields } });
const mine = (id) => getState().training && getState().training.id === id;

/** The model name that reads the drawing: the live weights, or the snapshot the slider is at. */
export function modelFor(t) {
  return t.at == null ? `training:${t.id}` : `training:${t.id}@${t.at}`;
}

const reads = createLatestWins(
  async ({ model }) => {
    const source = drawing();
    if (!source) return null; // (no drawing: nothing to read)
    return {
      model,
      result: await api.predictSource(source, { model, activations: true, encoding: 'uint8' }),
    };
  },
  {
    onResult: (job, reading) => setState({ trainReading: reading }),
    onError: (job, err) =>
      setState({ trainReading: { model: job.model, result: null, error: words(err) } }),
  },
);

function reread() {
  const t = getState().training;
  if (t && t.id) reads.submit({ model: modelFor(t) });
}

async function loadSnapshots(id) {
  try {
    const snapshots = await api.getSnapshots(id);
    if (mine(id)) patch({ snapshots });
  } catch {
    /* the slider keeps the snapshots it has; the next event asks again */
  }
}

function closeEvents() {
  if (events) events.close();
  events = null;
}

function ended(id, fields) {
  closeEvents();
  patch({ running: false, ...fields });
  loadSnapshots(id);
  reread();
}

function follow(id) {
  closeEvents();
  events = api.trainingEvents(id, {
    open() {
      if (mine(id) && getState().training.lost) {
        patch({ lost: false, message: 'Connected again: the training goes on.', error: false });
      }
    },
    queued(d) {
      if (mine(id)) patch({ status: 'queued', position: d.position, message: waiting(d.position) });
    },
    progress(d) {
      const t = getState().training;
      if (mine(id) && t.status === 'queued') patch({ status: 'running', message: TRAINING });
      if (!mine(id) || d.step <= t.step) return; // (a resumed stream may repeat a step)
      const [name, kernels] = Object.entries(d.kernels || {})[0] || [];
      patch({
        step: d.step, total: d.steps_total, epoch: d.epoch, imgPerS: d.img_per_s,
        curve: [...t.curve, [d.step, d.loss, d.accuracy]],
        ...(kernels && { kernels: { name, ...kernels } }),
      });
      if (t.at == null) reread();
      if (!t.snapshots.length) loadSnapshots(id);
    },
    evaluation(d) {
      const t = getState().training;
      if (!mine(id) || t.val.some(([s]) => s === d.step)) return;
      // (a fine-tune's evaluations also measure the learner's examples: examples_accuracy)
      patch({ val: [...t.val, [d.step, d.val_accuracy, d.val_loss, d.examples_accuracy]] });
      loadSnapshots(id);
    },
    done(d) {
      if (!mine(id)) return;
      ended(id, {
        status: 'done',
        testAccuracy: d.test_accuracy,
        message: `Done: ${percent(d.test_accuracy)} of the 10,000 test digits right after ` +
          `${Math.round(d.seconds)} s and ${d.steps} steps.`,
        ...(d.examples_after && { finetune: finetuneOutcome(d) }),
      });
    },
    cancelled() {
      if (mine(id)) {
        ended(id, {
          status: 'cancelled', message: 'Stopped. The slider still scrubs through what it learnt.',
        });
      }
    },
    failed(d) {
      if (mine(id)) {
        ended(id, {
          status: 'failed', error: true,
          message: `The training failed: ${d.reason || d.error || 'no reason given'}.`,
        });
      }
    },
    async error(closed) {
      if (!mine(id) || !getState().training.running) return;
      if (!closed) {
        return patch({
          lost: true, error: true,
          message: 'The connection to the server dropped; trying again\u2026',
        });
      }
      closeEvents();
      try {
        const job = await api.getTraining(id);
        ended(id, {
          status: job.status,
          error: job.status !== 'done',
          message: `The live stream ended; the training is ${job.status}.`,
        });
      } catch (err) {
        const gone = err.status === 404
          ? 'This training is no longer on the server (finished ones are kept an hour).'
          : words(err);
        patch({ running: false, status: 'lost', error: true, message: gone });
      }
    },
  });
}

/** What a fine-tune's `done` says: MNIST before and after, each example's readings, what moved. */
const finetuneOutcome = (d) => ({
  testAccuracy: d.test_accuracy,
  baseTestAccuracy: d.base_test_accuracy,
  before: d.examples_before, // [{ label, predicted }] in the order the examples were sent
  after: d.examples_after,
  changed: d.changed, // { layers: { 'conv1.weight': change }, filters: { layer, ranked } }
});

/**
 * Start a job with the form's settings (only the fields given), a fine-tune's examples too;
 * its id, or null when the server refused it (the state says why).
 */
export async function start(body) {
  // the state keeps the settings as the job's status tells them: the examples counted
  const config = body.examples ? { ...body, examples: body.examples.length } : body;
  closeEvents();
  setState({
    training: {
      running: false, status: 'starting', config, message: 'Starting\u2026', error: false,
    },
    trainReading: null,
  });
  try {
    const { id, status, queue_position: position } = await api.startTraining(body);
    remember(id);
    setState({ training: fresh(id, config, status, position) });
    follow(id);
    return id;
  } catch (err) {
    patch({ status: 'error', error: true, message: `Could not start: ${words(err)}` });
    return null;
  }
}

/** Ask the server to stop the job; the stream's `cancelled` event says when it has. */
export async function stop() {
  const t = getState().training;
  if (!t || !t.running) return;
  patch({ message: 'Stopping\u2026' });
  try {
    await api.stopTraining(t.id);
  } catch (err) {
    patch({ error: true, message: `Could not stop it: ${words(err)}` });
  }
}

/** Read the drawing with the snapshot at `step` (null: the newest weights). */
export function scrub(step) {
  patch({ at: step });
  reread();
}

/** The whole page reads with this job's weights (modelName), or with the shipped ones (null). */
export function useJobModel(on) {
  const t = getState().training;
  setState({ modelName: on && t && t.id ? `training:${t.id}` : null });
}

/**
 * After a reload: this browser's latest job, if the server still has it, followed from its
 * first event (the stream replays what it learnt), waiting or training or finished.
 */
async function resume() {
  const id = remembered();
  if (!id || getState().training) return;
  try {
    const job = await api.getTraining(id);
    if (getState().training) return; // (a job started meanwhile wins)
    setState({ training: fresh(id, job.config, job.status, job.queue_position) });
    follow(id);
  } catch (err) {
    if (err.status === 404) remember(null); // ended more than an hour ago: forget it
  }
}

/** Wire the controller to the page: getDrawing() -> the shown drawing's source, or null. */
export function setupTraining(getDrawing) {
  drawing = getDrawing;
  resume();
  // a new drawing (the page's own prediction changed) is read again by the job's weights
  subscribe((s, changed) => {
    if (changed.has('result') && s.training && s.training.id) reread();
  });
}
