// The one owner of application state. Views never keep their own copy of shared state:
// they read it from the change announcement and render. Every key is declared below.

const bus = new EventTarget();

let state = Object.freeze({
  status: 'idle', // idle | loading | ready | error  (mirrored on <main data-state>)
  message: '', // words for the status area
  error: false, // whether message reports a failure
  modelName: null, // the model every request names (null: the server's default); ?model= in the URL
  model: null, // GET /api/v1/model for modelName
  models: null, // GET /api/v1/models (the picker's list), [] when the server lists none
  compare: null, // compare mode: { with: second model, names, answers: [a, b], busy, error }
  modelError: '', // why GET /api/v1/model failed, or ''
  result: null, // the latest decoded prediction response, or null
  upload: null, // { name } while the pad shows an uploaded image
  saliency: false, // overlay on the input view
  highlight: null, // { r0, c0, r1, c1 } receptive field on the 28x28 input, or null
  detail: null, // { name, channel } the map (or unit) open in the detail dialog, or null
  // interventions: every prediction runs on the network with these edits
  ablated: {}, // { layerName: [channel, ...] } maps (or units) switched off
  kernels: {}, // { layerName: { channel: [C_in][kh][kw] } } filters replaced by the person's
  steps: null, // { open, list, error } the preprocessing strip
  counterfactual: null, // { target, busy, answer, error, source } "what would make it a ..."
  training: null, // the Train view's job: figures, curves, kernels, snapshots (training-job.js)
  trainReading: null, // { model, result, error } the drawing read by the job's weights
  // Teach it (issue 19): the learner's labelled drawings, kept in localStorage (teach.js)
  teachExamples: [], // [{ key, image: PNG data URL, label }] in the order they were added
  teachReadings: null, // { model, byKey: { key: { label, probability } }, error } the page's
  //                      model's reading of each example (model: the name asked, null: default)
  teachNote: null, // { message, error } what became of the latest add, remove or import
  teachJob: null, // { id, base, keys } the latest fine-tune: its base model, the examples sent
  teachFilters: null, // { id, layer, shape, ranked: [[ch, change]], before, after } or error
  // the atlas (issue 20), for a model whose description says "atlas": true (atlas.js); each is
  // { ..., busy } while asked for, { ..., error } if it failed; null before, or without an atlas
  embedding: null, // { model, layer, method, points: [{ x, y, index, label, predicted }] }
  classInputs: null, // { model, classes: [{ label, probability, image }] }
  confusionCell: null, // { model, truth, predicted, count, digits } the model card's chosen cell
  channelAtlas: null, // { key: 'model|layer|channel', examples, ideal, idealValue, ... } for the
  //                     map open in the detail view
  atlasNote: null, // { where, message, error } what became of putting an atlas digit on the pad
});

export function getState() {
  return state;
}

/** Merge a patch and announce which keys changed (synchronously). */
export function setState(patch) {
  const prev = state;
  const next = { ...state, ...patch };
  const changed = new Set(Object.keys(patch).filter((k) => prev[k] !== next[k]));
  if (!changed.size) return;
  state = Object.freeze(next);
  bus.dispatchEvent(new CustomEvent('change', { detail: { state, prev, changed } }));
}

/** Call fn(state, changed, prev) after every change; returns an unsubscribe function. */
export function subscribe(fn) {
  const handler = (e) => fn(e.detail.state, e.detail.changed, e.detail.prev);
  bus.addEventListener('change', handler);
  return () => bus.removeEventListener('change', handler);
}
