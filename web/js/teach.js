// Teach it (issue 19): the learner's labelled drawings, kept in localStorage and exported or
// imported as a JSON file; the page's model's reading of each (POST /predict/batch); and the
// fine-tune that teaches them to the model the page reads with. The job is a training job like
// the Train view's (training-job.js follows its events, its chart and its reading of the
// drawing); this module adds what a fine-tune has besides: its examples and the filters it moved.

import { getState, setState, subscribe } from './state.js';
import * as api from './api.js';
import { createLatestWins } from './live.js';
import * as training from './training-job.js';

export const MAX_EXAMPLES = 500; // the most a fine-tune takes (the API's limit)
export const TOP_FILTERS = 4; // the filters that moved most, shown before and after
const FORMAT = 'convscope-teach-examples'; // the "format" of the stored and exported JSON
const STORE_KEY = FORMAT;
const JOB_KEY = 'convscope-teach-job';
const BATCH = 256; // images a /predict/batch request
const IMAGE_MAX = 280; // px: an uploaded image is shrunk to this before it is kept
const DATA_URL = /^data:image\/(png|jpeg|webp|gif|bmp);base64,[A-Za-z0-9+/]+=*$/;
const SIDE = 28;

let drawing = () => null; // the shown drawing as a source ({ image } or { file }), or null

const note = (where, message, error = false) => setState({ teachNote: { where, message, error } });
const newKey = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, '0'))
    .join('');
const a = (d) => (d === 8 ? 'an' : 'a');
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function load(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || 'null');
  } catch {
    return null;
  }
}

function save(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false; // no storage, or full
  }
}

// ---- the examples -------------------------------------------------------------------------

/** A [28][28] grid in [0, 1] as a PNG data URL: white ink on black, as the pad draws. */
function pixelsToPng(rows) {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = SIDE;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(SIDE, SIDE);
  rows.flat().forEach((v, i) => img.data.set([v * 255, v * 255, v * 255, 255], i * 4));
  ctx.putImageData(img, 0, 0);
  return canvas.toDataURL('image/png');
}

/** An uploaded image no larger than IMAGE_MAX px a side (localStorage holds a few MB). */
async function shrink(dataUrl) {
  try {
    const img = new Image();
    img.src = dataUrl;
    await img.decode();
    const s = Math.min(1, IMAGE_MAX / Math.max(img.naturalWidth, img.naturalHeight));
    if (s === 1) return dataUrl;
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(img.naturalWidth * s));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * s));
    canvas.getContext('2d').drawImage(img, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL('image/png');
  } catch {
    return dataUrl; // not decodable here: the server will say what is wrong with it
  }
}

/** One item of a file: { image, label } or { pixels, label } -> { image, label }, or a reason. */
function checkItem(item) {
  if (!item || typeof item !== 'object') return { why: 'it is not an object' };
  const { label, image, pixels } = item;
  if (!Number.isInteger(label) || label < 0 || label > 9) {
    return { why: `its label must be a whole number from 0 to 9, not ${JSON.stringify(label)}` };
  }
  if (typeof image === 'string') {
    if (!DATA_URL.test(image)) return { why: 'its image is not a base64 data URL of an image' };
    return { image, label };
  }
  const grid = Array.isArray(pixels) && pixels.length === SIDE &&
    pixels.every((r) => Array.isArray(r) && r.length === SIDE &&
      r.every((v) => Number.isFinite(v) && v >= 0 && v <= 1));
  if (!grid) return { why: 'it has neither an "image" nor "pixels" of 28x28 numbers in [0, 1]' };
  return { image: pixelsToPng(pixels), label };
}

/** A file's text -> [{ image, label }]; an Error in words naming the first bad item. */
export function parseExamples(text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new Error(`This file is not JSON (${err.message}).`);
  }
  const items = Array.isArray(body) ? body : body && body.examples;
  if (!Array.isArray(items)) {
    throw new Error('This file holds no "examples" list: export one from this page to see how.');
  }
  return items.map((item, i) => {
    const checked = checkItem(item);
    if (checked.why) throw new Error(`Example ${i + 1} of ${items.length}: ${checked.why}.`);
    return checked;
  });
}

/** The examples as the JSON file "Export" downloads (and "Import" reads back). */
export function exportText() {
  const examples = getState().teachExamples.map(({ image, label }) => ({ label, image }));
  return JSON.stringify({ format: FORMAT, version: 1, examples });
}

/** Put examples into the list (a drawing kept again only takes its new label); how many new. */
function merge(items) {
  const list = [...getState().teachExamples];
  let added = 0;
  for (const { image, label } of items) {
    const same = list.findIndex((e) => e.image === image);
    if (same >= 0) list[same] = { ...list[same], label };
    else if (list.length < MAX_EXAMPLES) {
      list.push({ key: newKey(), image, label });
      added++;
    }
  }
  setState({ teachExamples: list });
  return added;
}

/** Add the shown drawing (or upload) with the label the learner picked, right or wrong. */
export async function add(label) {
  const { result } = getState();
  const source = drawing();
  if (!source) return note('ask', 'Draw a digit first, then pick what it is.', true);
  let image = await api.imageOf(source);
  if (source.file) image = await shrink(image);
  const before = getState().teachExamples.length;
  const added = merge([{ image, label }]);
  const n = getState().teachExamples.length;
  const read = result && result.isDigit
    ? `; the model reads ${a(result.label)} ${result.label}` : '';
  if (added) return note('ask', `Added as ${a(label)} ${label}${read}. ${plural(n, 'example')}.`);
  if (n === before && n >= MAX_EXAMPLES) {
    return note('ask', `You have ${MAX_EXAMPLES} examples, as many as one teaching takes: ` +
      'remove some to add more.', true);
  }
  return note('ask', `This drawing is already an example; it is now labelled ${label}.`);
}

/** Take an example out of the list. */
export function remove(key) {
  const list = getState().teachExamples;
  const gone = list.find((e) => e.key === key);
  if (!gone) return;
  setState({ teachExamples: list.filter((e) => e !== gone) });
  note('view', `Removed an example labelled ${gone.label}; ${plural(list.length - 1, 'example')} ` +
    'left.');
}

/** Read a JSON file of examples into the list, or say in words why not. */
export async function importFile(file) {
  try {
    const items = parseExamples(await file.text());
    const added = merge(items);
    const skipped = items.length - added;
    note('view', `Imported ${plural(added, 'example')} from \u201c${file.name}\u201d` +
      (skipped ? ` (${skipped} already here or over the ${MAX_EXAMPLES} one teaching takes).`
        : '.'));
  } catch (err) {
    note('view', `Could not import \u201c${file.name}\u201d: ${err.message}`, true);
  }
}

// ---- the current model's reading of each example --------------------------------------------

const reader = createLatestWins(
  async ({ model, examples }) => {
    const byKey = {};
    for (let i = 0; i < examples.length; i += BATCH) {
      const chunk = examples.slice(i, i + BATCH);
      const read = await api.predictBatch(chunk.map((e) => e.image), model);
      chunk.forEach((e, j) => (byKey[e.key] = read[j]));
    }
    return byKey;
  },
  {
    onResult({ model }, byKey) {
      const r = getState().teachReadings;
      if (model !== getState().modelName) return; // (the page moved on to another model)
      const kept = r && r.model === model ? r.byKey : {};
      setState({ teachReadings: { model, byKey: { ...kept, ...byKey }, error: '' } });
    },
    onError({ model }, err) {
      const r = getState().teachReadings;
      const kept = r && r.model === model ? r.byKey : {};
      setState({ teachReadings: {
        model, byKey: kept, error: `The model could not read your examples: ${err.message}`,
      } });
    },
  },
);

function readMissing() {
  const { teachExamples, teachReadings: r, modelName } = getState();
  const have = r && r.model === modelName ? r.byKey : {};
  const missing = teachExamples.filter((e) => !have[e.key]);
  if (missing.length) reader.submit({ model: modelName, examples: missing });
}

// ---- teaching ---------------------------------------------------------------------------------

/** The served model a fine-tune starts from: the page's, else (a training's) the default. */
export function baseModel({ modelName, models }) {
  const served = models || [];
  if (modelName && served.some((m) => m.name === modelName)) return modelName;
  const fallback = served.find((m) => m.default);
  return fallback ? fallback.name : null;
}

/** Fine-tune the page's model on every example, for `steps` steps. */
export async function teach(steps) {
  const s = getState();
  const base = baseModel(s);
  if (!s.teachExamples.length) {
    return note('view', 'Add a few examples first: draw, then pick the digit under the ' +
      'prediction.', true);
  }
  if (!base) return note('view', 'The list of models has not arrived yet; try again.', true);
  const examples = s.teachExamples.map(({ image, label }) => ({ image, label }));
  const keys = s.teachExamples.map((e) => e.key);
  setState({ teachNote: null });
  const id = await training.start({ kind: 'finetune', base_model: base, examples, steps });
  if (!id) return;
  const job = { id, base, keys };
  save(JOB_KEY, job);
  setState({ teachJob: job, teachFilters: null });
}

/** The filters that moved most, before (the base model's) and after (the job's). */
async function loadFilters(t) {
  if (getState().teachFilters && getState().teachFilters.id === t.id) return; // (asked already)
  const { layer, ranked } = t.finetune.changed.filters || {};
  const top = (ranked || []).slice(0, TOP_FILTERS);
  const filters = { id: t.id, layer, ranked: top, before: null, after: null, error: '' };
  setState({ teachFilters: filters });
  if (!layer || !top.length) return;
  const mine = () => getState().teachFilters && getState().teachFilters.id === t.id;
  try {
    const [before, after] = await Promise.all([
      api.getWeights(layer, t.config.base_model), api.getWeights(layer, `training:${t.id}`),
    ]);
    if (mine()) {
      setState({ teachFilters: { ...filters, before: before.weight, after: after.weight } });
    }
  } catch (err) {
    const error = `The filters could not be loaded: ${err.message}`;
    if (mine()) setState({ teachFilters: { ...filters, error } });
  }
}

/** The whole page reads with the taught model (on), or with the model it was taught from. */
export function useTaught(on) {
  const { training: t, models } = getState();
  if (!t || !t.id) return;
  const base = t.config && t.config.base_model;
  const fallback = (models || []).find((m) => m.default);
  const back = !base || (fallback && fallback.name === base) ? null : base;
  setState({ modelName: on ? `training:${t.id}` : back });
}

/** A finished fine-tune in state.training, or null. */
export const taught = (t) =>
  (t && t.config && t.config.kind === 'finetune' && t.status === 'done' && t.finetune ? t : null);

/** Wire Teach it: getDrawing() -> the shown drawing's source ({ image } or { file }), or null. */
export function setupTeach(getDrawing) {
  drawing = getDrawing;
  const stored = load(STORE_KEY);
  const items = stored && Array.isArray(stored.examples) ? stored.examples : [];
  const examples = items.filter((e) => !checkItem(e).why && typeof e.key === 'string')
    .slice(0, MAX_EXAMPLES).map(({ key, image, label }) => ({ key, image, label }));
  const job = load(JOB_KEY);
  setState({ teachExamples: examples, teachJob: job && job.id ? job : null });

  subscribe((s, changed) => {
    if (changed.has('teachExamples')) {
      const kept = save(STORE_KEY, { format: FORMAT, version: 1, examples: s.teachExamples });
      if (!kept) {
        note('view', 'This browser could not keep your examples (its storage is full or off): ' +
          'export them to a file to keep them.', true);
      }
    }
    if (changed.has('teachExamples') || changed.has('modelName')) readMissing();
    const t = taught(s.training);
    if (t && (!s.teachFilters || s.teachFilters.id !== t.id)) queueMicrotask(() => loadFilters(t));
  });
  readMissing();
}
