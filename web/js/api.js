// The only module that knows URLs and wire formats. Everything it returns is decoded:
// arrays become { shape, data } with data a Float32Array (or a Uint8Array of 0/1 for masks).

const API = '/api/v1';
const PREDICT_OPTIONS = { activations: true, saliency: true };
// "uint8" (a byte a value, and masks a bit a cell) is the smallest answer; servers older than it
// answer 422 naming the encoding, and then the page asks them for "base64" from there on.
let encoding = 'uint8';
let modelName = null; // the model requests name (null: the server's default)

/** Name this model in every request from now on (null: the server's default). */
export function useModel(name) {
  modelName = name || null;
}

/** A body with the current model named, unless it names one itself. */
const named = (body) => (modelName && !('model' in body) ? { model: modelName, ...body } : body);
/** '?model=NAME' (or '&...' after a query) for GETs; '' for the default model. */
const modelQuery = (sep = '?', name = modelName) =>
  (name ? `${sep}model=${encodeURIComponent(name)}` : '');

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

// ---- float16 -------------------------------------------------------------------------------

/** IEEE 754 binary16 bits -> number (normals, subnormals, +-0, +-Infinity, NaN). */
export function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero or subnormal: 0.frac * 2^-14
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

let halfTable = null; // all 65536 values, built on first use (256 KB, ~1 ms)

/** Little-endian float16 bytes -> Float32Array. */
export function decodeFloat16(bytes) {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = halfToFloat(i);
  }
  const n = bytes.length >> 1;
  const out = new Float32Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 2) out[i] = halfTable[bytes[j] | (bytes[j + 1] << 8)];
  return out;
}

function base64ToBytes(b64) {
  let bin;
  try {
    bin = atob(b64);
  } catch {
    throw new ApiError('The server sent an array that is not valid base64.');
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function listShape(x) {
  const shape = [];
  while (Array.isArray(x)) {
    shape.push(x.length);
    x = x[0];
  }
  return shape;
}

/** Bytes b -> offset + scale * b as a Float32Array (the "uint8" encoding of float arrays). */
export function decodeScaled(bytes, scale, offset) {
  const value = new Float32Array(256);
  for (let b = 0; b < 256; b++) value[b] = offset + scale * b;
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = value[bytes[i]];
  return out;
}

/** numpy.packbits bytes (first element in the most significant bit) -> count 0/1 bytes. */
export function unpackBits(bytes, count) {
  if (bytes.length !== Math.ceil(count / 8)) {
    throw new ApiError(`The server sent ${bytes.length} bytes of bits for ${count} values.`);
  }
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
  return out;
}

/** A wire array (nested list, or base64 {dtype, shape, data[, scale, offset]}) -> {shape, data}. */
export function decodeArray(x) {
  if (x == null) return null;
  if (Array.isArray(x)) return { shape: listShape(x), data: Float32Array.from(x.flat(Infinity)) };
  const count = x.shape.reduce((a, b) => a * b, 1);
  const bytes = base64ToBytes(x.data);
  const scaled = x.scale != null || x.offset != null;
  let data;
  if (x.dtype === 'float16') data = decodeFloat16(bytes);
  else if (x.dtype === 'uint8' && scaled) {
    if (!Number.isFinite(x.scale) || !Number.isFinite(x.offset)) {
      throw new ApiError(
        `The server sent a uint8 array with scale ${x.scale} and offset ${x.offset}.`,
      );
    }
    data = decodeScaled(bytes, x.scale, x.offset);
  } else if (x.dtype === 'uint8') data = bytes;
  else if (x.dtype === 'bit') data = unpackBits(bytes, count);
  else if (x.dtype === 'float32') {
    data = new Float32Array(bytes.buffer, 0, bytes.length >> 2).slice();
  }
  else throw new ApiError(`The server sent an array of unknown type "${x.dtype}".`);
  if (data.length !== count) {
    throw new ApiError(`The server sent ${data.length} values for an array of shape [${x.shape}].`);
  }
  return { shape: x.shape.slice(), data };
}

/** Atlas digits (a predict answer's `neighbors`, a confusion cell's), decoded; `image` is the
 * 28x28 `thumbnail`. */
const decodeDigits = (list) => list.map((d) => ({
  index: d.index,
  label: d.label,
  predicted: d.predicted,
  distance: d.distance ?? null,
  probabilities: d.probabilities ? Float32Array.from(d.probabilities) : null,
  image: decodeArray(d.thumbnail),
}));

function decodePrediction(body) {
  return {
    label: body.label,
    probabilities: Float32Array.from(body.probabilities || []),
    digitScore: body.digit_score ?? null,
    isDigit: body.is_digit !== false, // does it look like a digit at all? (absent: yes)
    input: decodeArray(body.input),
    saliency: decodeArray(body.saliency),
    target: body.target ?? null,
    timings: body.timings_ms || {},
    model: body.model || '',
    layers: (body.layers || []).map((l) => ({
      name: l.name,
      kind: l.kind,
      shape: l.shape,
      data: decodeArray(l.data),
      mask: decodeArray(l.mask),
    })),
    baseline: body.baseline
      ? {
        label: body.baseline.label,
        probabilities: Float32Array.from(body.baseline.probabilities),
      }
      : null,
    steps: body.steps
      ? body.steps.map((st) => ({ name: st.name, note: st.note, image: decodeArray(st.image) }))
      : null,
    neighbors: Array.isArray(body.neighbors) ? decodeDigits(body.neighbors) : null,
    embedding: body.embedding
      ? { x: body.embedding.x, y: body.embedding.y, layer: body.embedding.layer }
      : null,
  };
}

// ---- HTTP ----------------------------------------------------------------------------------

function detailText(body) {
  const d = body && body.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((e) => (e && e.msg) || JSON.stringify(e)).join('; ');
  return d ? JSON.stringify(d) : '';
}

async function request(path, init) {
  let res;
  try {
    res = await fetch(API + path, init);
  } catch {
    throw new ApiError('Cannot reach the ConvScope server. Is it running? Try again in a moment.');
  }
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const why = detailText(body) || `${res.status} ${res.statusText || 'error'}`.trim();
    throw new ApiError(why, res.status);
  }
  if (body === null) {
    throw new ApiError(`The server's answer was not JSON (HTTP ${res.status}).`, res.status);
  }
  return body;
}

/** POST a JSON body to an API path. */
function postJSON(path, body) {
  return request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(named(body)),
  });
}

// whether a model has an atlas, as its description said ('' is the server's default), so the
// live predictions ask for the drawing's neighbours only where the server can answer them
const atlasOf = new Map();

/** GET /api/v1/model for the current model (or the one named). */
export async function getModel(name = modelName) {
  const body = await request(`/model${modelQuery('?', name)}`);
  atlasOf.set(name || '', body && body.atlas === true);
  return body;
}

/** GET /api/v1/models: [{ name, default, sha256, parameters, test_accuracy, layers }]. */
export function getModels() {
  return request('/models');
}

/**
 * A prediction request made with the options (and `neighbors` where the model has an atlas);
 * once more with "base64" if "uint8" is refused, or without neighbours if the atlas is gone.
 */
async function predict(send) {
  const key = modelName || '';
  const options = () =>
    ({ ...PREDICT_OPTIONS, encoding, ...(atlasOf.get(key) && { neighbors: true }) });
  try {
    return decodePrediction(await send(options()));
  } catch (err) {
    const noAtlas = err.status === 503 && atlasOf.get(key) && /atlas/i.test(err.message);
    const oldEncoding =
      err.status === 422 && encoding !== 'base64' && /encoding/i.test(err.message);
    if (!noAtlas && !oldEncoding) throw err;
    if (noAtlas) atlasOf.set(key, false);
    else encoding = 'base64';
    return decodePrediction(await send(options()));
  }
}

/** POST /api/v1/predict with a data URL (PNG from the pad); extra: more body fields (edits). */
export function predictImage(dataUrl, extra = {}) {
  return predict((options) => postJSON('/predict', { image: dataUrl, ...options, ...extra }));
}

/** POST /api/v1/predict/file with a File (multipart), same response as predictImage. */
export function predictFile(file, { edits } = {}) {
  const form = new FormData();
  form.append('file', file, file.name || 'upload');
  if (edits) form.append('edits', JSON.stringify(edits));
  return predict((options) => {
    const query = new URLSearchParams(Object.entries(options).map(([k, v]) => [k, String(v)]));
    if (modelName) query.set('model', modelName);
    return request(`/predict/file?${query}`, { method: 'POST', body: form });
  });
}

/**
 * POST /api/v1/predict/batch: each image's reading by the current model (or the one named),
 * [{ label, probability, isDigit }] in the images' order.
 */
export async function predictBatch(images, model = modelName) {
  const b = await postJSON('/predict/batch', { images, ...(model && { model }) });
  return b.labels.map((label, i) => ({
    label, probability: b.probabilities[i][label], isDigit: b.is_digit[i] !== false,
  }));
}

const cache = new Map(); // key -> promise of an answer that does not change for its model

/** make() once a key; a failure is forgotten, so a later attempt retries. */
function once(key, make) {
  if (!cache.has(key)) {
    const p = make();
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return cache.get(key);
}

/**
 * A layer's weights { name, kind, weight: {shape, data} | null, bias }, fetched once a model
 * (the current model, or the one named).
 */
export function getWeights(name, model = modelName) {
  const url = `/model/layers/${encodeURIComponent(name)}/weights?encoding=base64` +
    modelQuery('&', model);
  return once(`weights|${model}|${name}`, async () => {
    const b = await request(url);
    return { name: b.name, kind: b.kind, weight: decodeArray(b.weight), bias: decodeArray(b.bias) };
  });
}

// ---- the atlas (issue 20) ------------------------------------------------------------------
// Computed from MNIST's test set when a model was trained; 503 (in words) for a model without
// one, which GET /api/v1/model says beforehand ("atlas": false).

const atlasGet = (path, model) =>
  request(`/model/${path}?encoding=uint8${modelQuery('&', model)}`);

/**
 * GET /model/layers/{layer}/channels/{c}: the 9 test digits that excite the channel most (each
 * patch its receptive field) and the input optimised to excite it, once a model.
 */
export function getChannel(layer, channel, model = modelName) {
  const path = `layers/${encodeURIComponent(layer)}/channels/${channel}`;
  return once(`channel|${model}|${layer}|${channel}`, async () => {
    const b = await atlasGet(path, model);
    return {
      layer: b.layer,
      map: b.map,
      channel: b.channel,
      examples: b.examples.map((e) => ({
        index: e.index, label: e.label, predicted: e.predicted ?? null, row: e.row, col: e.col,
        value: e.value, box: e.box, patch: decodeArray(e.patch),
      })),
      ideal: decodeArray(b.ideal),
      idealBox: b.ideal_box || null,
      idealValue: b.ideal_value,
    };
  });
}

/** GET /model/classes: for each digit, the input optimised to make the model answer it. */
export function getClassInputs(model = modelName) {
  return once(`classes|${model}`, async () => (await atlasGet('classes', model)).classes.map(
    (c) => ({ label: c.label, probability: c.probability, image: decodeArray(c.image) }),
  ));
}

/** GET /model/embedding: { layer, method, points: [{ x, y, index, label, predicted }] }. */
export function getEmbedding(model = modelName) {
  return once(`embedding|${model}`, async () => {
    const b = await atlasGet('embedding', model);
    return { layer: b.layer, method: b.method, points: b.points };
  });
}

/** GET /model/digits/{index}: a test digit the atlas holds, with its 28x28 image. */
export function getDigit(index, model = modelName) {
  return once(`digit|${model}|${index}`, async () => {
    const [d] = decodeDigits([await atlasGet(`digits/${index}`, model)]);
    return d;
  });
}

/** GET /model/confusion/{true}/{predicted}: { count, digits } of that cell of the matrix. */
export function getConfusionCell(truth, predicted, model = modelName) {
  return once(`confusion|${model}|${truth}|${predicted}`, async () => {
    const b = await atlasGet(`confusion/${truth}/${predicted}`, model);
    const digits = decodeDigits(b.digits);
    return { truth: b.true, predicted: b.predicted, count: b.count, digits };
  });
}

// ---- interventions (issue 9) ----------------------------------------------------------------

/** The image of a source ({ image: dataUrl } or { file }) as a data URL, for JSON bodies. */
export function imageOf(source) {
  if (!source.file) return Promise.resolve(source.image);
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new ApiError(`Could not read "${source.file.name}" again.`));
    reader.readAsDataURL(source.file);
  });
}

/** POST /api/v1/predict for a source with exactly these options (and edits, if any). */
export async function predictSource(source, { edits, ...options }) {
  const body = {
    image: await imageOf(source),
    activations: false,
    saliency: false,
    ...options,
    ...(edits && { edits }),
  };
  return decodePrediction(await postJSON('/predict', body));
}

/** POST /api/v1/counterfactual: the input edited until the network reads body.target. */
export async function counterfactual(body) {
  const b = await postJSON('/counterfactual', { ...body, encoding: 'base64' });
  return {
    ...b,
    pixels: decodeArray(b.pixels),
    delta: decodeArray(b.delta),
    probabilities: Float32Array.from(b.probabilities),
    original: {
      label: b.original.label,
      probabilities: Float32Array.from(b.original.probabilities),
    },
  };
}

// ---- trainings -------------------------------------------------------------------------------

const job = (id) => `/trainings/${encodeURIComponent(id)}`;

const CLIENT_KEY = 'convscope-client-id';
// 32 hex digits (crypto.randomUUID needs a secure context; a class's server may be plain http)
const freshId = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0'))
    .join('');

/**
 * This browser's own id (X-Client-Id), kept in localStorage: the server lets one learner hold
 * one queued or running job at a time. Without storage, an id for this page's life.
 */
function clientId() {
  let id = null;
  try {
    id = localStorage.getItem(CLIENT_KEY);
    if (!id) localStorage.setItem(CLIENT_KEY, (id = freshId()));
  } catch {
    id = clientId.fallback || (clientId.fallback = freshId());
  }
  return id;
}

/**
 * POST /api/v1/trainings (no model named: it makes one):
 * { id, status: 'queued' | 'running', queue_position, events }.
 */
export const startTraining = (body) =>
  request('/trainings', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Client-Id': clientId() },
    body: JSON.stringify(body),
  });

/** GET /api/v1/trainings/{id}: the job's status and latest figures. */
export const getTraining = (id) => request(job(id));

/** DELETE /api/v1/trainings/{id}: cancel it; answers the job's status. */
export const stopTraining = (id) => request(job(id), { method: 'DELETE' });

/** GET /api/v1/trainings/{id}/snapshots -> [{ step, val_accuracy }], in the server's order. */
export const getSnapshots = async (id) => (await request(`${job(id)}/snapshots`)).snapshots;

/**
 * One EventSource on a job's events; on[name](data) gets each event's JSON, progress events
 * with their kernels decoded. The browser resumes it after a drop (Last-Event-ID); close() ends it.
 */
export function trainingEvents(id, on) {
  const es = new EventSource(`${API}${job(id)}/events`);
  for (const name of ['queued', 'progress', 'evaluation', 'done', 'cancelled', 'failed']) {
    es.addEventListener(name, (e) => {
      const data = JSON.parse(e.data);
      if (data.kernels) {
        const kernels = Object.entries(data.kernels).map(([k, v]) => [k, decodeArray(v)]);
        data.kernels = Object.fromEntries(kernels);
      }
      on[name](data);
    });
  }
  es.onerror = () => on.error(es.readyState === EventSource.CLOSED);
  es.onopen = () => on.open();
  return es;
}
